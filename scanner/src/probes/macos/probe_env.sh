LC_ALL=C; export LC_ALL
PATH="/usr/bin:/bin:/usr/sbin:/sbin:/usr/libexec${PATH:+:$PATH}"; export PATH
