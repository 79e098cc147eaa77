#!/bin/sh
# Writes MLflow's basic-auth config from the environment at container start, then execs the
# command (`mlflow server ... --app-name basic-auth`). The admin credentials come from docker/.env,
# so none live in the image or in compose.yaml. MLflow creates the admin user on the first start
# of an empty auth database; changing MLFLOW_ADMIN_PASSWORD later does not change that user.
set -eu

: "${MLFLOW_ADMIN_USERNAME:?set MLFLOW_ADMIN_USERNAME in docker/.env}"
: "${MLFLOW_ADMIN_PASSWORD:?set MLFLOW_ADMIN_PASSWORD in docker/.env}"
: "${MLFLOW_AUTH_DATABASE_URI:?set MLFLOW_AUTH_DATABASE_URI (the basic-auth user store)}"
# MLflow refuses a shorter admin password only deep in its start-up, and the container restarts.
if [ "${#MLFLOW_ADMIN_PASSWORD}" -lt 12 ]; then
    echo "mlflow-entrypoint: MLFLOW_ADMIN_PASSWORD must be at least 12 characters (MLflow's rule)" >&2
    exit 1
fi

conf="${MLFLOW_AUTH_CONFIG_PATH:-/tmp/mlflow-auth/basic_auth.ini}"
mkdir -p "$(dirname "$conf")"
umask 077  # the file holds the admin password

# MLflow reads the file with configparser, which treats '%' as interpolation: double it.
esc() { printf '%s' "$1" | sed 's/%/%%/g'; }

cat >"$conf" <<EOF
[mlflow]
default_permission = ${MLFLOW_DEFAULT_PERMISSION:-READ}
database_uri = $(esc "$MLFLOW_AUTH_DATABASE_URI")
admin_username = $(esc "$MLFLOW_ADMIN_USERNAME")
admin_password = $(esc "$MLFLOW_ADMIN_PASSWORD")
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF

export MLFLOW_AUTH_CONFIG_PATH="$conf"
exec "$@"
