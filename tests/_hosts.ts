/**
 * Two test hosts, A and B, for what crosses a network (remote mode, a remote agent).
 *
 * As root with iproute2, each host is a network namespace made here: `ip netns add`, a veth pair
 * between the two, addresses from the benchmarking range 198.18.0.0/15 inside the namespaces only
 * (nothing is added to the machine's own interfaces). A process runs on a host through `nsenter
 * --net=/run/netns/NAME`, which enters only the network namespace (unlike `ip netns exec`, which
 * also remounts /sys and so hides cgroups) and execs, so the PID we get is the program's.
 *
 * Where namespaces cannot be made (not root, no `ip`, or `PROVISIONING_TEST_HOSTS=loopback`), the
 * hosts fall back to the loopback addresses 127.0.0.2 and 127.0.0.3 of this machine.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";

/** One host: its address, and how to run a program on it. */
export interface TestHost {
  /** `a` or `b`. */
  name: string;
  address: string;
  /** The namespace's name, when the host is one. */
  netns?: string;
  /** `[cmd, args]` that runs `cmd args` on this host. */
  argv(cmd: string, args: string[]): [string, string[]];
  /** A TCP port nothing listens on at {@linkcode address}. */
  freePort(): Promise<number>;
  /** Whether something accepts TCP connections on `address:port`, asked from this host. */
  listening(port: number): boolean;
}

/** Hosts A and B; removes the namespaces on dispose. */
export interface TestHosts extends AsyncDisposable {
  kind: "netns" | "loopback";
  a: TestHost;
  b: TestHost;
}

const NETNS_ADDRESSES = ["198.18.0.1", "198.18.0.2"];
const LOOPBACK_ADDRESSES = ["127.0.0.2", "127.0.0.3"];
let made = 0;

/** Whether something accepts a TCP connection on `address:port` (bash's /dev/tcp). */
function probe(prefix: string[], address: string, port: number): boolean {
  const [cmd, ...args] = [...prefix, "bash", "-c", `exec 3<>/dev/tcp/${address}/${port}`];
  return spawnSync(cmd, args, { stdio: "ignore", timeout: 5_000 }).status === 0;
}

function loopbackPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function loopbackHost(name: string, address: string): TestHost {
  return {
    name,
    address,
    argv: (cmd, args) => [cmd, args],
    freePort: () => loopbackPort(address),
    listening: (port) => probe([], address, port),
  };
}

/** Namespaces of test processes that are gone (a test killed mid-run): `pvt-<pid>-…`. */
function removeStale(): void {
  const list = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout ?? "";
  for (const line of list.split("\n")) {
    const m = /^(pvt-(\d+)-\d+-[ab])\b/.exec(line);
    if (m && !existsSync(`/proc/${m[2]}`)) spawnSync("ip", ["netns", "del", m[1]]);
  }
}

function netnsHosts(): TestHosts {
  removeStale();
  const id = `${process.pid}-${made++}`;
  const ns = [`pvt-${id}-a`, `pvt-${id}-b`];
  // veth names are at most 15 characters.
  const veth = [`pv${process.pid % 1e7}${made}a`, `pv${process.pid % 1e7}${made}b`];
  const ip = (...args: string[]) =>
    execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  const remove = () => ns.forEach((n) => spawnSync("ip", ["netns", "del", n]));
  try {
    for (const n of ns) ip("netns", "add", n);
    ip("link", "add", veth[0], "type", "veth", "peer", "name", veth[1]);
    for (let i = 0; i < 2; i++) {
      ip("link", "set", veth[i], "netns", ns[i]);
      ip("-n", ns[i], "addr", "add", `${NETNS_ADDRESSES[i]}/24`, "dev", veth[i]);
      ip("-n", ns[i], "link", "set", veth[i], "up");
      ip("-n", ns[i], "link", "set", "lo", "up");
    }
  } catch (e) {
    remove();
    throw e;
  }
  const host = (i: number): TestHost => {
    const prefix = ["nsenter", `--net=/run/netns/${ns[i]}`, "--"];
    let next = 20_000; // a namespace of our own: every port is free
    return {
      name: "ab"[i],
      address: NETNS_ADDRESSES[i],
      netns: ns[i],
      argv: (cmd, args) => [prefix[0], [...prefix.slice(1), cmd, ...args]],
      freePort: () => Promise.resolve(next++),
      listening: (port) => probe(prefix, NETNS_ADDRESSES[i], port),
    };
  };
  return {
    kind: "netns",
    a: host(0),
    b: host(1),
    [Symbol.asyncDispose]: () => Promise.resolve(remove()),
  };
}

/** Whether this process can make network namespaces (and was not told to use loopback). */
function canMakeNamespaces(): boolean {
  if (process.env.PROVISIONING_TEST_HOSTS === "loopback") return false;
  if (process.getuid?.() !== 0) return false;
  return spawnSync("ip", ["netns", "list"]).status === 0 &&
    spawnSync("nsenter", ["--version"]).status === 0;
}

/** Hosts A and B: network namespaces where they can be made, else loopback addresses. */
export function testHosts(): TestHosts {
  if (canMakeNamespaces()) {
    try {
      return netnsHosts();
    } catch (e) {
      console.warn(`network namespaces failed, using loopback hosts: ${(e as Error).message}`);
    }
  }
  return {
    kind: "loopback",
    a: loopbackHost("a", LOOPBACK_ADDRESSES[0]),
    b: loopbackHost("b", LOOPBACK_ADDRESSES[1]),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
