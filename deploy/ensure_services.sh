#!/usr/bin/env bash
# Start the local PostgreSQL and RabbitMQ if they are installed here but not running.
# With neither installed and Docker available, use deploy/compose.yaml instead.
set -uo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  else
    echo "PostgreSQL is not running on 127.0.0.1:5432 and is not installed here" >&2
    echo "  install it (apt-get install postgresql) or set DATABASE_URL / TEST_DATABASE_URL" >&2
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi

if ! rabbit_up; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached
  else
    echo "RabbitMQ is not running on 127.0.0.1:5672 and is not installed here" >&2
    echo "  install it (apt-get install rabbitmq-server) or set BROKER_URL / TEST_BROKER_URL" >&2
  fi
  for _ in $(seq 1 60); do rabbit_up && break; sleep 1; done
fi

pg_up && echo "PostgreSQL: up" || echo "PostgreSQL: DOWN" >&2
rabbit_up && echo "RabbitMQ: up" || echo "RabbitMQ: DOWN" >&2
pg_up && rabbit_up
