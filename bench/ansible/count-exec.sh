#!/bin/sh
# Stands in for ssh and sftp (ANSIBLE_SSH_EXECUTABLE / ANSIBLE_SFTP_EXECUTABLE) to count
# Ansible's round trips: one line per invocation in $BENCH_SSH_LOG, then the real tool.
name=${0##*/}; name=${name#count-}
[ -n "$BENCH_SSH_LOG" ] && echo "$name" >> "$BENCH_SSH_LOG"
exec "/usr/bin/$name" "$@"
