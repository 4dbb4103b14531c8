#!/bin/sh
echo "$GREETING"
echo "I am PID $$ in $(hostname), working in $(pwd)"
cat /app/build-info
