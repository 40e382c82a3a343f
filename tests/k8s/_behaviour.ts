/**
 * Per-test behaviours of the simulated workloads: how long pods take to become ready, and which
 * failure they show. A behaviour is chosen per pod from rules matched by namespace, deployment
 * name or image (later rules win, and rules can change at run time: running pods follow the new
 * behaviour at their next step), on top of an image naming convention:
 *
 * - an image tag `:crashloop`, `:pullfail`, `:configerror`, `:neverready`, `:unschedulable`,
 *   `:replicafailure` or `:stuck` (progress deadline exceeded) selects that failure;
 * - an image that is not a valid reference (e.g. upper case, spaces) gives `InvalidImageName`.
 */

export type Failure =
  | "CrashLoopBackOff"
  | "ErrImagePull"
  | "InvalidImageName"
  | "CreateContainerConfigError"
  | "NeverReady"
  | "Unschedulable"
  | "ReplicaFailure"
  | "ProgressDeadlineExceeded";

/** How the pods of a deployment behave. Every field is optional; see {@linkcode DEFAULT_BEHAVIOUR}. */
export interface Behaviour {
  /** Time from pod creation until its containers run (and are ready when healthy). */
  readyAfterMs?: number;
  /** The failure the pods show; undefined for healthy pods. */
  failure?: Failure;
  /** Message of the waiting reason, the ReplicaFailure condition or the unschedulable condition. */
  message?: string;
  /** Progress deadline; defaults to spec.progressDeadlineSeconds (300 ms for ProgressDeadlineExceeded). */
  progressDeadlineMs?: number;
  /** Time a gracefully deleted (or scaled-down) pod stays Terminating before it goes. */
  terminationDelayMs?: number;
  /** How long a crash-looping container runs before it exits. */
  crashAfterMs?: number;
  /** Wait of CrashLoopBackOff before a restart, and between ErrImagePull and ImagePullBackOff. */
  backoffMs?: number;
  /** Lines every container run writes when it starts (default: a start and a ready line). */
  logLines?: string[];
  /** When set, a running container writes `heartbeat N` every this many ms. */
  logEveryMs?: number;
  /** Exit code of a crashing container. */
  exitCode?: number;
}

export type ResolvedBehaviour =
  & Required<
    Omit<Behaviour, "failure" | "message" | "progressDeadlineMs" | "logLines" | "logEveryMs">
  >
  & Behaviour;

export const DEFAULT_BEHAVIOUR: ResolvedBehaviour = {
  readyAfterMs: 50,
  terminationDelayMs: 50,
  crashAfterMs: 40,
  backoffMs: 100,
  exitCode: 1,
};

/** Which pods a rule applies to; every given field must match. */
export interface Match {
  namespace?: string;
  deployment?: string;
  /** Exact image, or a pattern tested against each container image. */
  image?: string | RegExp;
}

const TAGS: Record<string, Failure> = {
  crashloop: "CrashLoopBackOff",
  pullfail: "ErrImagePull",
  configerror: "CreateContainerConfigError",
  neverready: "NeverReady",
  unschedulable: "Unschedulable",
  replicafailure: "ReplicaFailure",
  stuck: "ProgressDeadlineExceeded",
};

const REFERENCE =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

/** The rules of one double, and their resolution for a pod. */
export class Behaviours {
  private rules: { match: Match; behaviour: Behaviour }[] = [];

  /** Adds a rule (it wins over earlier ones). */
  set(match: Match, behaviour: Behaviour): void {
    this.rules.push({ match, behaviour });
  }

  /** Forgets every rule (the image convention stays). */
  clear(): void {
    this.rules = [];
  }

  /** The behaviour of pods of `deployment` in `namespace` running `images`. */
  resolve(namespace: string, deployment: string, images: string[]): ResolvedBehaviour {
    const out: ResolvedBehaviour = { ...DEFAULT_BEHAVIOUR };
    for (const image of images) {
      const tag = /:([^/:@]+)$/.exec(image)?.[1];
      if (tag && TAGS[tag]) out.failure = TAGS[tag];
      else if (!REFERENCE.test(image)) out.failure = "InvalidImageName";
    }
    for (const { match, behaviour } of this.rules) {
      if (match.namespace !== undefined && match.namespace !== namespace) continue;
      if (match.deployment !== undefined && match.deployment !== deployment) continue;
      const m = match.image;
      if (m !== undefined && !images.some((i) => typeof m === "string" ? i === m : m.test(i))) {
        continue;
      }
      Object.assign(out, behaviour);
    }
    return out;
  }
}
