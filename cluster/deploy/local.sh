#!/usr/bin/env bash
# betml on this machine as on a cluster: a Ray head with token auth and its dashboard (the Jobs
# API), and the Serve application deployed on it, left running.
#
#   cluster/deploy/local.sh up     # `make demo` ends with this; `make serve-up` runs it alone
#   cluster/deploy/local.sh down   # `make serve-down`: stop Serve and this head
#
# The head listens on RAY_PORT (6380: Redis may hold Ray's default 6379) and its dashboard on
# DASHBOARD_PORT (8265). Its workers (Serve replicas, submitted jobs) inherit this shell's
# environment: BETML_DATA_DIR is made absolute so they use the same store and MLflow as the CLI.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-.venv/bin}
# Jobs run `python -m cluster.cli ...` with the head's PATH: make it this environment's python,
# as a cluster image carries betml's environment.
export PATH="$(cd "$BIN" && pwd):$PATH"
RAY_PORT=${RAY_PORT:-6380}
DASHBOARD_PORT=${DASHBOARD_PORT:-8265}
SERVE_CONFIG=${SERVE_CONFIG:-configs/serve/local.yaml}
# Logical CPUs of the head. The Serve replicas reserve 1.75 of them (configs/serve/local.yaml)
# while they idle most of the time; two more than the machine has leave room for a sweep's
# trials and a job's driver beside the running application.
NUM_CPUS=${NUM_CPUS:-$(( $(nproc) + 2 ))}
export BETML_DATA_DIR=${BETML_DATA_DIR:-$PWD/var}
export BETML_API_KEY=${BETML_API_KEY:-demo-key}
export RAY_AUTH_MODE=token
export RAY_ADDRESS=127.0.0.1:$RAY_PORT
export RAY_API_SERVER_ADDRESS=http://127.0.0.1:$DASHBOARD_PORT
"$BIN/ray" get-auth-token --generate >/dev/null   # ~/.ray/auth_token, read by Ray and betml

case "${1:-up}" in
up)
    if "$BIN/ray" status --address "$RAY_ADDRESS" >/dev/null 2>&1; then
        echo "a Ray head already answers on $RAY_ADDRESS: deploying onto it"
    else
        "$BIN/ray" start --head --port "$RAY_PORT" --dashboard-port "$DASHBOARD_PORT" \
            --num-cpus "$NUM_CPUS" \
            --dashboard-host 127.0.0.1 --node-ip-address 127.0.0.1 --disable-usage-stats \
            >/dev/null
        echo "started a Ray head on $RAY_ADDRESS (dashboard and Jobs API: $RAY_API_SERVER_ADDRESS)"
    fi
    "$BIN/betml" serve up --config "$SERVE_CONFIG"
    cat <<HELP

The application runs on the head until \`make serve-down\`. To use the head from a shell:
  export RAY_AUTH_MODE=token RAY_ADDRESS=$RAY_ADDRESS RAY_API_SERVER_ADDRESS=$RAY_API_SERVER_ADDRESS
  export BETML_DATA_DIR=$BETML_DATA_DIR BETML_API_KEY=$BETML_API_KEY

Submit the same work to the cluster as a Ray job (any betml data/train/sweep/backtest/predict command):
  $BIN/betml submit --wait -- sweep ensemble --config configs/sweeps/demo-lightgbm.yaml --promote
  $BIN/betml jobs list
or through the application:
  curl -s -X POST http://127.0.0.1:8000/api/v1/models/train -H 'content-type: application/json' \\
    -H "x-api-key: $BETML_API_KEY" -d '{"family": "ensemble", "config": "configs/sweeps/demo-lightgbm.yaml", "trials": 4, "promote": true}'
  $BIN/betml feedback status          # the feedback loop: stored backtests, live scores, retraining
HELP
    ;;
down)
    "$BIN/betml" serve down || true
    "$BIN/ray" stop   # stops every Ray of this user on this machine
    ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
