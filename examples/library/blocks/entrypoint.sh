#!/bin/sh
# The entrypoint every blocks.App image shares: greet, then run the app's script.
cat /etc/motd
exec sh /etc/app-script "$@"
