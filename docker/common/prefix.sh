#!/bin/sh
# Prefixes every line of stdin with "NAME | " and flushes each line, so that docker logs shows
# which program wrote it. Usage: prefix.sh NAME
exec sed -u "s/^/$1 | /"
