#!/usr/bin/env bash
# Prints this host's cgroup layout: v2, hybrid or v1.
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo v2
elif [ -d /sys/fs/cgroup/unified ] && [ "$(stat -fc %T /sys/fs/cgroup/unified)" = cgroup2fs ]; then echo hybrid
else echo v1; fi
