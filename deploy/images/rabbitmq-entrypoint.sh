#!/bin/sh
# The upstream image's settings into RabbitMQ's configuration, then the broker in the
# foreground (Debian's wrapper drops to the rabbitmq user).
set -eu
cat > /etc/rabbitmq/rabbitmq.conf <<CONF
loopback_users = none
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}
default_vhost = ${RABBITMQ_DEFAULT_VHOST:-/}
listeners.tcp.default = ${RABBITMQ_NODE_PORT:-5672}
CONF
exec rabbitmq-server
