#!/usr/bin/env bash
# A local Spark Connect server from the installed pyspark (the `python` on PATH, or
# $PYTHON), for `crm-batch --db sc://127.0.0.1:15002` and the Spark tests.
#   scripts/spark-local.sh start    start it and wait until it answers a query
#   scripts/spark-local.sh stop     stop it (and wait until the process has gone)
#   scripts/spark-local.sh status   say whether it runs and answers
# Settings (environment):
#   CRM_BATCH_SPARK_PORT     port on 127.0.0.1 (default 15002)
#   CRM_BATCH_SPARK_DIR      warehouse (Parquet), metastore, logs, scratch (default var/spark)
#   CRM_BATCH_SPARK_MASTER   Spark master (default local[2]: one JVM). Separate executor
#                            processes: local-cluster[2,1,2048] (two workers of one core and
#                            2 GB each), or spark://HOST:7077 of a standalone master
#   CRM_BATCH_SPARK_MEMORY   driver memory (default 2g; the machine may be shared)
#   CRM_BATCH_SPARK_EXECUTOR_MEMORY  memory of each executor process (default 1g)
#   CRM_BATCH_SPARK_PARTITIONS  spark.sql.shuffle.partitions (default 8: Spark's 200 are
#                            made for clusters; on two cores each crm-batch query then
#                            took 2-4x as long on small data)
# With $SPARK_CONNECT_AUTHENTICATE_TOKEN set, the server admits only clients sending that
# bearer token (crm-batch: --db sc://localhost:15002 and the token in the same variable or
# in $CRM_BATCH_DATABASE_PASSWORD). Tables live in a Hive metastore (embedded Derby) under the folder, so a restarted
# server still knows the tables loaded before. Needs Java 17 or 21 (scripts/bootstrap.sh
# installs it on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${CRM_BATCH_SPARK_PORT:-15002}"
dir="${CRM_BATCH_SPARK_DIR:-var/spark}"
master="${CRM_BATCH_SPARK_MASTER:-local[2]}"
memory="${CRM_BATCH_SPARK_MEMORY:-2g}"
python="${PYTHON:-python}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

spark_home() {
  "$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null || {
    echo "spark-local: pyspark is not installed for $python (pip install -e \".[spark]\")" >&2
    exit 1
  }
}

export SPARK_HOME="$(spark_home)"
export SPARK_LOG_DIR="$dir/logs" SPARK_PID_DIR="$dir/run" SPARK_LOCAL_DIRS="$dir/scratch"
export SPARK_IDENT_STRING="crm-batch-$port"
# executors started by local-cluster or a standalone worker run the same Python
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$(command -v "$python")}"
pid_file="$SPARK_PID_DIR/spark-$SPARK_IDENT_STRING-org.apache.spark.sql.connect.service.SparkConnectServer-1.pid"

running_pid() {
  [ -f "$pid_file" ] || return 1
  local pid
  pid="$(cat "$pid_file")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

answers() {
  "$python" - "$port" <<'EOF' >/dev/null 2>&1
import sys
from pyspark.sql import SparkSession
# localhost: with $SPARK_CONNECT_AUTHENTICATE_TOKEN set (server and client read it) pyspark
# sends the token over a local channel to localhost, over TLS to any other name
spark = SparkSession.builder.remote(f"sc://localhost:{sys.argv[1]}").create()
assert spark.sql("select 1 as one").collect()[0][0] == 1
spark.stop()
EOF
}

start() {
  command -v java >/dev/null 2>&1 || {
    echo "spark-local: java not found; install Java 17 (apt-get install openjdk-17-jre-headless)" >&2
    exit 1
  }
  if pid="$(running_pid)"; then
    echo "spark-local: already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  mkdir -p "$dir/warehouse" "$SPARK_LOG_DIR" "$SPARK_PID_DIR" "$SPARK_LOCAL_DIRS"
  "$SPARK_HOME/sbin/start-connect-server.sh" \
    --master "$master" \
    --driver-memory "$memory" \
    --conf "spark.connect.grpc.binding.address=127.0.0.1" \
    --conf "spark.connect.grpc.binding.port=$port" \
    --conf "spark.sql.warehouse.dir=$dir/warehouse" \
    --conf "spark.sql.catalogImplementation=hive" \
    --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$dir/metastore_db;create=true" \
    --conf "spark.driver.extraJavaOptions=-Dderby.system.home=$dir" \
    --conf "spark.sql.session.timeZone=UTC" \
    --conf "spark.sql.shuffle.partitions=${CRM_BATCH_SPARK_PARTITIONS:-8}" \
    --conf "spark.local.dir=$SPARK_LOCAL_DIRS" \
    --conf "spark.ui.enabled=false" \
    --conf "spark.executor.memory=${CRM_BATCH_SPARK_EXECUTOR_MEMORY:-1g}" >/dev/null
  local waited=0
  until answers; do
    if ! running_pid >/dev/null; then
      echo "spark-local: the server exited; its log:" >&2
      tail -n 40 "$SPARK_LOG_DIR"/*"$SPARK_IDENT_STRING"*.out >&2 || true
      exit 1
    fi
    if [ "$waited" -ge 180 ]; then
      echo "spark-local: no answer on 127.0.0.1:$port after 180 s (log in $SPARK_LOG_DIR)" >&2
      stop
      exit 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
  echo "spark-local: Spark Connect on sc://127.0.0.1:$port (master $master, pid $(running_pid)," \
    "warehouse $dir/warehouse)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "spark-local: not running on port $port"
    rm -f "$pid_file"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "spark-local: pid $pid still running after 60 s; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
  echo "spark-local: stopped (pid $pid)"
}

status() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "spark-local: not running on port $port"
    return 3
  fi
  if answers; then
    echo "spark-local: running (pid $pid) and answering on sc://127.0.0.1:$port"
  else
    echo "spark-local: running (pid $pid) but not answering on sc://127.0.0.1:$port yet"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: scripts/spark-local.sh start|stop|status" >&2
    exit 2
    ;;
esac
