/**
 * `provisioning completion bash|zsh|fish`: a completion script for the shell. Its static part
 * (groups, commands, flags, choices) comes from walking the built command tree, so it never goes
 * stale; service names, categories and operations come from the registry when TAB is pressed,
 * through the hidden `completion --list services|categories|operations [--config F]` (one word
 * a line; nothing, and exit 0, when the registry cannot be read).
 *
 * Each script is a table — a `case` (`switch` in fish) keyed by `cmds:PATH`, `flags:PATH`,
 * `value:PATH:FLAG` and `arg:PATH:N` — and a small engine in the shell's own language that walks
 * the words typed so far (global options may stand anywhere, as `hoistGlobalOptions` allows).
 *
 * @module
 */
import { Argument, type Command, Option } from "commander";
import { UsageError } from "./_lib.ts";
import { allCommands, commandPath } from "../help.ts";
import { type Common, leaf, open, type Run } from "./_common.ts";

const SHELLS = ["bash", "zsh", "fish"] as const;
type Shell = typeof SHELLS[number];
const LISTS = ["services", "categories", "operations"] as const;
type List = typeof LISTS[number];

/**
 * What completes a word: the registry's words (`@services`, `@categories`, `@operations`),
 * `@files`, `@none` (free text), or the words themselves, space-separated.
 */
type Words = string;

/** Positional arguments, by name, that complete from the registry (`start <names...>`). */
const ARGUMENT_WORDS: Record<string, `@${List}`> = {
  name: "@services",
  names: "@services",
  operation: "@operations",
};
/** Option values that complete from the registry. */
const OPTION_WORDS: Record<string, `@${List}`> = { "--category": "@categories" };

/**
 * Options every command accepts wherever they stand (`hoistGlobalOptions` moves them to the
 * command; `acceptGlobalOptions` gives them to every command without subcommands).
 */
const GLOBAL_OPTIONS = [
  new Option("--config <file>", "service registry"),
  new Option("--json", "print one JSON document"),
  new Option("-q, --quiet", "print only failures and the summary"),
  new Option("--no-color", "no colours"),
];

/** One command of the tree, as the scripts see it. */
export interface CompletionNode {
  /** `"services start"`, `""` for the program. */
  path: string;
  /** Subcommands and their descriptions (commander's `help` among them where it offers one). */
  commands: [name: string, description: string][];
  /** Every flag, short and long, and its description. */
  flags: [flag: string, description: string][];
  /** The flags that take a value, and what completes it. */
  values: [flag: string, words: Words][];
  /** What completes each positional argument; the last one repeats when `variadic`. */
  args: Words[];
  variadic: boolean;
}

/** A menu description: without the details in parentheses, on one line. */
const brief = (d: string) => d.replace(/\s*\([^)]*\)/g, "").replace(/\s+/g, " ").trim();

const bothFlags = (o: Option) => [o.short, o.long].filter((f): f is string => f !== undefined);

/** The command tree as the scripts see it. */
export function completionNodes(program: Command): CompletionNode[] {
  return allCommands(program).map((cmd): CompletionNode => {
    const help = cmd.createHelp();
    const own = help.visibleOptions(cmd);
    const options = [...own, ...GLOBAL_OPTIONS.filter((g) => !own.some((o) => o.long === g.long))];
    const valueOf = (o: Option): Words =>
      o.argChoices?.join(" ") ?? OPTION_WORDS[o.long ?? ""] ??
        (/[<[]file[\]>]/.test(o.flags) ? "@files" : "@none");
    const argWords = (a: Argument): Words =>
      a.argChoices?.join(" ") ?? ARGUMENT_WORDS[a.name()] ?? "@none";
    return {
      path: commandPath(cmd),
      commands: help.visibleCommands(cmd)
        .map((c): [string, string] => [c.name(), brief(c.description())]),
      flags: options.flatMap((o) =>
        bothFlags(o).map((f): [string, string] => [f, brief(o.description)])
      ),
      values: options.filter((o) => o.required || o.optional)
        .flatMap((o) => bothFlags(o).map((f): [string, Words] => [f, valueOf(o)])),
      args: cmd.registeredArguments.map(argWords),
      variadic: cmd.registeredArguments.at(-1)?.variadic ?? false,
    };
  });
}

/** One line of the table: a key (a glob when `rest`), and described names or words. */
interface Entry {
  key: string;
  rest?: boolean;
  described?: [string, string][];
  words?: Words;
}

function entries(nodes: CompletionNode[]): Entry[] {
  return nodes.flatMap((n) => [
    ...(n.commands.length ? [{ key: `cmds:${n.path}`, described: n.commands }] : []),
    { key: `flags:${n.path}`, described: n.flags },
    ...n.values.map(([flag, words]) => ({ key: `value:${n.path}:${flag}`, words })),
    ...n.args.map((words, i) =>
      n.variadic && i === n.args.length - 1
        ? { key: `arg:${n.path}:`, rest: true, words }
        : { key: `arg:${n.path}:${i}`, words }
    ),
  ]);
}

/** Single-quoted for bash and zsh. */
const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
/** Single-quoted for fish. */
const fq = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

const header = (name: string, shell: Shell, install: string) =>
  `# ${shell} completion for ${name}, generated by \`${name} completion ${shell}\`.
# Install: ${install}
# Service names, categories and operations are read from the registry on each TAB
# (\`${name} completion --list services\`), with the --config typed on the line if any.
`;

function bash(name: string, nodes: CompletionNode[]): string {
  const fn = `_${name}`;
  const table = entries(nodes).map((e) => {
    const words = e.described ? e.described.map(([w]) => w).join(" ") : e.words ?? "";
    return `    ${sq(e.key)}${e.rest ? "*" : ""}) REPLY=${sq(words)} ;;`;
  });
  return `${header(name, "bash", `${name} completion bash > /etc/bash_completion.d/${name}`)}
_${fn}_spec() {
  case $1 in
${table.join("\n")}
    *) REPLY='' ;;
  esac
}

_${fn}_list() { ${name} completion --list "$@" 2>/dev/null; }

# $1: what completes the word, $2: the word, then --config FILE when given.
_${fn}_reply() {
  local words=$1 cur=$2
  shift 2
  case $words in
    @none) COMPREPLY=() ;;
    @files) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    @*) mapfile -t COMPREPLY < <(compgen -W "$(_${fn}_list "\${words#@}" "$@")" -- "$cur") ;;
    *) mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur") ;;
  esac
}

${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmdpath='' w REPLY='' helpmode='' i n=0
  local -a cfg=()
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case $w in
      --config=*) cfg=("$w") ;;
      -*)
        _${fn}_spec "value:$cmdpath:$w"
        if [[ -n $REPLY ]]; then
          if ((i + 1 == COMP_CWORD)); then
            _${fn}_reply "$REPLY" "$cur" "\${cfg[@]}"
            return 0
          fi
          ((i++))
          [[ $w == --config ]] && cfg=(--config "\${COMP_WORDS[i]}")
        fi
        ;;
      *)
        _${fn}_spec "cmds:$cmdpath"
        if [[ -z $helpmode && $w == help && " $REPLY " == *" help "* ]]; then
          helpmode=1
        elif [[ -n $REPLY && " $REPLY " == *" $w "* ]]; then
          cmdpath=\${cmdpath:+$cmdpath }$w
          n=0
        else
          ((n++))
        fi
        ;;
    esac
  done
  if [[ $cur == -* && -z $helpmode ]]; then
    _${fn}_spec "flags:$cmdpath"
    _${fn}_reply "$REPLY" "$cur"
    return 0
  fi
  _${fn}_spec "cmds:$cmdpath"
  if [[ -n $REPLY ]]; then
    [[ -n $helpmode ]] && REPLY=" $REPLY " && REPLY=\${REPLY// help / }
    _${fn}_reply "$REPLY" "$cur"
    return 0
  fi
  [[ -n $helpmode ]] && return 0
  _${fn}_spec "arg:$cmdpath:$n"
  [[ -n $REPLY ]] && _${fn}_reply "$REPLY" "$cur" "\${cfg[@]}"
  return 0
}

complete -F ${fn} ${name}
`;
}

function zsh(name: string, nodes: CompletionNode[]): string {
  const fn = `_${name}`;
  const described = (pairs: [string, string][]) =>
    pairs.map(([w, d]) => sq(`${w.replaceAll(":", "\\:")}:${d}`)).join(" ");
  const table = entries(nodes).map((e) =>
    `    ${sq(e.key)}${e.rest ? "*" : ""}) ${
      e.described ? `reply=(${described(e.described)})` : `REPLY=${sq(e.words ?? "")}`
    } ;;`
  );
  return `#compdef ${name}
${header(name, "zsh", `source <(${name} completion zsh)  (after compinit)`)}
_${fn}_spec() {
  REPLY=''
  reply=()
  case $1 in
${table.join("\n")}
  esac
}

_${fn}_list() { ${name} completion --list "$@" 2>/dev/null }

# $1: what completes the word, then --config FILE when given.
_${fn}_reply() {
  local words=$1
  local -a items
  shift
  case $words in
    (@none) return 1 ;;
    (@files) _files ;;
    (@*) items=(\${(f)"$(_${fn}_list \${words#@} "$@")"}); compadd -a items ;;
    (*) items=(\${=words}); compadd -a items ;;
  esac
}

${fn}() {
  local cmdpath='' w REPLY='' helpmode='' cur=\${words[CURRENT]}
  local -a reply cfg names
  local -i i n=0
  for (( i = 2; i < CURRENT; i++ )); do
    w=\${words[i]}
    case $w in
      (--config=*) cfg=(\${(Q)w}) ;;
      (-*)
        _${fn}_spec "value:$cmdpath:$w"
        if [[ -n $REPLY ]]; then
          if (( i + 1 == CURRENT )); then
            _${fn}_reply "$REPLY" $cfg
            return
          fi
          (( i++ ))
          [[ $w == --config ]] && cfg=(--config \${(Q)words[i]})
        fi
        ;;
      (*)
        _${fn}_spec "cmds:$cmdpath"
        names=(\${reply%%:*})
        if [[ -z $helpmode && $w == help ]] && (( \${names[(Ie)help]} )); then
          helpmode=1
        elif (( \${names[(Ie)$w]} )); then
          cmdpath=\${cmdpath:+$cmdpath }$w
          n=0
        else
          (( n++ ))
        fi
        ;;
    esac
  done
  if [[ $cur == -* && -z $helpmode ]]; then
    _${fn}_spec "flags:$cmdpath"
    _describe -t options option reply
    return
  fi
  _${fn}_spec "cmds:$cmdpath"
  if (( $#reply )); then
    [[ -n $helpmode ]] && reply=(\${reply:#help:*})
    _describe -t commands command reply
    return
  fi
  [[ -n $helpmode ]] && return 1
  _${fn}_spec "arg:$cmdpath:$n"
  [[ -n $REPLY ]] && _${fn}_reply "$REPLY" $cfg
}

if [[ $funcstack[1] == ${fn} ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

function fish(name: string, nodes: CompletionNode[]): string {
  const fn = `__${name}`;
  const table = entries(nodes).map((e) =>
    `        case ${fq(e.key + (e.rest ? "*" : ""))}\n            ${
      e.described
        ? `printf '%s\\t%s\\n' ${e.described.flat().map(fq).join(" ")}`
        : `echo ${fq(e.words ?? "")}`
    }`
  );
  return `${
    header(name, "fish", `${name} completion fish > ~/.config/fish/completions/${name}.fish`)
  }
function ${fn}_spec
    switch $argv[1]
${table.join("\n")}
    end
end

function ${fn}_list
    ${name} completion --list $argv 2>/dev/null
end

# $argv[1]: what completes the word, then --config FILE when given.
function ${fn}_reply
    set -l words $argv[1]
    set -e argv[1]
    switch $words
        case @none
        case @files
            __fish_complete_path (commandline -ct)
        case '@*'
            ${fn}_list (string sub -s 2 -- $words) $argv
        case '*'
            string split ' ' -- $words
    end
end

function ${fn}_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmdpath ''
    set -l helpmode ''
    set -l cfg
    set -l n 0
    set -l i 2
    while test $i -le (count $tokens)
        set -l w $tokens[$i]
        switch $w
            case '--config=*'
                set cfg $w
            case '-*'
                set -l value (${fn}_spec "value:$cmdpath:$w")
                if test -n "$value"
                    if test $i -eq (count $tokens)
                        ${fn}_reply "$value" $cfg
                        return
                    end
                    set i (math $i + 1)
                    test "$w" = --config; and set cfg --config $tokens[$i]
                end
            case '*'
                set -l names (${fn}_spec "cmds:$cmdpath" | string replace -r '\\t.*' '')
                if test -z "$helpmode" -a "$w" = help; and contains -- help $names
                    set helpmode 1
                else if contains -- $w $names
                    set cmdpath (string trim -- "$cmdpath $w")
                    set n 0
                else
                    set n (math $n + 1)
                end
        end
        set i (math $i + 1)
    end
    if string match -q -- '-*' $cur; and test -z "$helpmode"
        ${fn}_spec "flags:$cmdpath"
        return
    end
    set -l cmds (${fn}_spec "cmds:$cmdpath")
    if test (count $cmds) -gt 0
        if test -n "$helpmode"
            string match -v -r '^help\\t' -- $cmds
        else
            printf '%s\\n' $cmds
        end
        return
    end
    test -n "$helpmode"; and return
    set -l words (${fn}_spec "arg:$cmdpath:$n")
    test -n "$words"; and ${fn}_reply "$words" $cfg
end

complete -c ${name} -e
complete -c ${name} -f -a '(${fn}_complete)'
`;
}

const SCRIPTS: Record<Shell, (name: string, nodes: CompletionNode[]) => string> = {
  bash,
  zsh,
  fish,
};

/** `shell` when it is one we write scripts for; otherwise a usage error naming them. */
function shellOf(shell: string): Shell {
  if ((SHELLS as readonly string[]).includes(shell)) return shell as Shell;
  throw new UsageError(
    `Unknown shell "${shell}": completion scripts exist for ${SHELLS.join(", ")}`,
  );
}

/** The registry's words for `--list`; nothing when the registry cannot be read. */
async function listWords(what: List, o: Common): Promise<string[]> {
  try {
    const p = await open(o);
    if (what === "services") return p.services.map((s) => s.name);
    if (what === "categories") return [...new Set(p.services.map((s) => s.category))];
    return p.graph.operations();
  } catch {
    return [];
  }
}

/** Add `completion [shell]` (and the hidden `--list`) to `program`. */
export function completionCommand(program: Command, run: Run): Command {
  return leaf(program, "completion", "print a shell completion script (bash, zsh or fish)")
    .addArgument(new Argument("[shell]", "the shell").choices(SHELLS).argParser(shellOf))
    .addOption(
      new Option("--list <words>", "the registry's words, one a line (for the scripts)")
        .choices(LISTS).hideHelp(),
    )
    .action(run(async (_out, shell: Shell | undefined, o: Common & { list?: List }) => {
      if (o.list) {
        const words = await listWords(o.list, o);
        return { doc: words, text: words.length ? words.join("\n") : undefined };
      }
      if (!shell) {
        throw new UsageError(`Name a shell: ${SHELLS.join(", ")}`, [
          `For example: ${program.name()} completion bash`,
        ]);
      }
      return { text: SCRIPTS[shell](program.name(), completionNodes(program)) };
    }));
}
