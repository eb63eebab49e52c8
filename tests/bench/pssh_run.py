"""The parallel-ssh side of tests/bench/vs-pssh.sh: `dpkg-query -W` on every
host of a test-fleet inventory, with the same key, port and concurrency as
the fleetsweep run, reading each host's whole output. Prints one line:
`ok N failed M bytes B`.

Usage: pssh_run.py INVENTORY CONCURRENCY
"""

import sys

from pssh.clients import ParallelSSHClient


def read_inventory(path):
    """The few fields the test harness writes: defaults and host addresses."""
    hosts, user, port, key = [], None, 22, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.startswith("user:"):
                user = s.split(":", 1)[1].strip()
            elif s.startswith("port:"):
                port = int(s.split(":", 1)[1])
            elif s.startswith("identity_file:"):
                key = s.split(":", 1)[1].strip()
            elif s.startswith("address:"):
                hosts.append(s.split(":", 1)[1].strip())
    return hosts, user, port, key


def main():
    inventory, concurrency = sys.argv[1], int(sys.argv[2])
    hosts, user, port, key = read_inventory(inventory)
    client = ParallelSSHClient(
        hosts,
        user=user,
        port=port,
        pkey=key,
        pool_size=concurrency,
        num_retries=1,
        timeout=30,
        allow_agent=False,
    )
    output = client.run_command("dpkg-query -W", stop_on_errors=False)
    client.join(output)
    ok = failed = size = 0
    for host_out in output:
        if host_out.exception is not None:
            failed += 1
            continue
        size += sum(len(line) + 1 for line in host_out.stdout)
        if host_out.exit_code == 0:
            ok += 1
        else:
            failed += 1
    print(f"ok {ok} failed {failed} bytes {size}")


if __name__ == "__main__":
    main()
