/**
 * Ports for the servers tests start. Never from the kernel's ephemeral range (`listen(0)` picks
 * one there): every outgoing connection of the machine (a health check of another service, a
 * client of the test) takes its local port from that range too, and one that took a port a
 * test had picked makes the service's pre-flight report it in use, truthfully. Below that range
 * only listeners that choose their port take it.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** The first port of the ephemeral range (`net.ipv4.ip_local_port_range`); 32768 by default. */
function ephemeralLow(): number {
  try {
    const low = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

const HIGH = ephemeralLow();
const LOW = Math.max(1024, HIGH - 16_000);
/** Handed out by this process already (two picks never collide, even before either listens). */
const given = new Set<number>();

/** A TCP port on 127.0.0.1 that nothing listens on, below the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (given.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) {
      given.add(port);
      return port;
    }
  }
  throw new Error(`No free port on 127.0.0.1 in ${LOW}-${HIGH - 1}`);
}
