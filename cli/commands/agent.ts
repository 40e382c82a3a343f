/**
 * `provisioning agent`: the HTTP face of one home in the foreground (JSON API, events, metrics,
 * dashboard), and `agent token`, which prints (or creates) its token.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { defaultHome, defaultTokenFile, loadToken, startAgent, statePaths } from "./_lib.ts";
import { type Common, interruptSignal, leaf, positiveInt, type Run } from "./_common.ts";

interface AgentFlags extends Common {
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
  insecureHttp?: boolean;
  allowHost: string[];
  maxStreams: number;
}

const tokenFileOf = (o: { tokenFile?: string }) =>
  o.tokenFile ?? defaultTokenFile(statePaths(defaultHome(process.env)));

/** Add `agent` and `agent token` to `program`. */
export function agentCommand(program: Command, run: Run): Command {
  const agent = leaf(
    program,
    "agent",
    "serve this home over HTTP: JSON API, events, Prometheus metrics, dashboard (foreground)",
  )
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:7070")
    .option("--tls-cert <file>", "TLS certificate (PEM); with --tls-key serves HTTPS")
    .option("--tls-key <file>", "TLS private key (PEM)")
    .option("--token-file <file>", "bearer token file (default $PROVISIONING_HOME/agent/token)")
    .option("--insecure-http", "allow plain HTTP on a non-loopback address")
    .addOption(
      new Option("--max-streams <n>", "most event streams open at once").default(64).argParser(
        positiveInt("--max-streams"),
      ),
    )
    .option(
      "--allow-host <name>",
      "another Host name to answer to (repeatable)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .action(run(async (out, o: AgentFlags) => {
      const a = await startAgent({
        config: o.config,
        listen: o.listen,
        tlsCert: o.tlsCert,
        tlsKey: o.tlsKey,
        insecureHttp: o.insecureHttp,
        tokenFile: tokenFileOf(o),
        allowHosts: o.allowHost,
        maxStreams: o.maxStreams,
        log: (line) => out(`${new Date().toISOString()} ${line}`),
      });
      out(`Agent listening on ${a.url} (pid ${process.pid})`);
      out(`Dashboard: ${a.signInUrl}`);
      out("Press Ctrl+C to stop (services keep running)");
      const signal = interruptSignal();
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
      await a.close();
      out("Agent stopped");
      return {};
    }));
  agent.command("token").description("print the agent's token (created when missing)")
    .option("--token-file <file>", "bearer token file (default $PROVISIONING_HOME/agent/token)")
    .action(run((_out, o: { tokenFile?: string }) => {
      const file = tokenFileOf(o);
      return Promise.resolve({ text: loadToken(file, { create: true }), doc: { file } });
    }));
  return agent;
}
