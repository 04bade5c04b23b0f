/**
 * Real brokers for the backplane tests: Debian's redis-server and nats-server, started by the
 * tests on free loopback ports and stopped by them (killed, paused with SIGSTOP, restarted on the
 * same port). Where a binary is missing the tests that need it are skipped with the reason, unless
 * CI=true or UWSERVE_REQUIRE_BROKERS=1 (.ci/run and the platform matrix install both), where that is a failure.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./client.js";

function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];
  for (const dir of dirs) if (dir !== "" && existsSync(join(dir, name))) return join(dir, name);
  return null;
}

export const REDIS_SERVER = findBinary("redis-server");
export const NATS_SERVER = findBinary("nats-server");
const REQUIRED = process.env.UWSERVE_REQUIRE_BROKERS === "1" || process.env.CI === "true";
if (REQUIRED && (REDIS_SERVER === null || NATS_SERVER === null)) {
  throw new Error(`CI=true (or UWSERVE_REQUIRE_BROKERS=1) but ${REDIS_SERVER === null ? "redis-server" : "nats-server"} is missing (apt-get install redis-server nats-server)`);
}

/** A describe() title that says why it is skipped. */
export function brokerTitle(title: string, kind: BrokerKind): string {
  const binary = kind === "redis" ? REDIS_SERVER : NATS_SERVER;
  return binary !== null ? title : `${title} — skipped: ${kind === "redis" ? "redis-server" : "nats-server"} is missing (apt-get install ${kind === "redis" ? "redis-server" : "nats-server"}; .ci/run does)`;
}

export type BrokerKind = "redis" | "nats";

export interface BrokerOptions {
  /** Redis requirepass / NATS user password. */
  password?: string;
  /** NATS: a user for `password`. */
  user?: string;
  /** NATS: token auth. */
  token?: string;
  /** Redis proto-max-bulk-len / NATS max_payload, bytes. */
  maxMessageBytes?: number;
  /** Serve TLS only, with a self-signed certificate for 127.0.0.1 and localhost (nats.js checks an IP host as "localhost"); its PEM: `broker.certificate`. */
  tls?: boolean;
}

/** One broker process on a fixed port, restartable. */
export class Broker {
  readonly kind: BrokerKind;
  readonly port: number;
  readonly options: BrokerOptions;
  #child: ChildProcess | null = null;
  #log = "";
  readonly #dir: string;

  private constructor(kind: BrokerKind, port: number, options: BrokerOptions) {
    this.kind = kind;
    this.port = port;
    this.options = options;
    this.#dir = mkdtempSync(join(tmpdir(), `uwserve-${kind}-`));
  }

  /** Starts a broker of `kind` on a free port and waits until it takes connections. */
  static async start(kind: BrokerKind, options: BrokerOptions = {}): Promise<Broker> {
    const broker = new Broker(kind, await freePort(), options);
    await broker.restart();
    return broker;
  }

  /** A broker that is not started yet (its port is reserved by number only). */
  static async unstarted(kind: BrokerKind, options: BrokerOptions = {}): Promise<Broker> {
    return new Broker(kind, await freePort(), options);
  }

  /** The URL a driver connects to, with the credentials in it. */
  get url(): string {
    const { password, user, token, tls } = this.options;
    if (this.kind === "redis") return `${tls ? "rediss" : "redis"}://${password !== undefined ? `:${encodeURIComponent(password)}@` : ""}127.0.0.1:${this.port}`;
    const auth = token !== undefined ? `${token}@` : user !== undefined ? `${user}:${password}@` : "";
    return `${tls ? "tls" : "nats"}://${auth}127.0.0.1:${this.port}`;
  }

  /** The self-signed certificate of a `tls` broker (PEM), for the client's CA list. */
  get certificate(): string {
    return readFileSync(join(this.#dir, "cert.pem"), "utf8");
  }

  #makeCertificate(): void {
    if (existsSync(join(this.#dir, "cert.pem"))) return;
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", join(this.#dir, "key.pem"), "-out", join(this.#dir, "cert.pem")], { stdio: "ignore" });
  }

  get log(): string {
    return this.#log;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /** Starts (again) on the same port. */
  async restart(): Promise<void> {
    if (this.#child !== null) throw new Error(`${this.kind} is already running`);
    if (this.options.tls) this.#makeCertificate();
    const child = this.kind === "redis" ? this.#spawnRedis() : this.#spawnNats();
    this.#child = child;
    child.stdout!.setEncoding("utf8").on("data", (s: string) => (this.#log += s));
    child.stderr!.setEncoding("utf8").on("data", (s: string) => (this.#log += s));
    child.on("exit", () => {
      if (this.#child === child) this.#child = null;
    });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (this.#child !== child) throw new Error(`${this.kind} exited at start:\n${this.#log}`);
      if (Date.now() > deadline) throw new Error(`${this.kind} did not listen on ${this.port} in 10 s:\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGKILL, and waits for the exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await exited;
  }

  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  #spawnRedis(): ChildProcess {
    const tls = [`--tls-cert-file`, join(this.#dir, "cert.pem"), "--tls-key-file", join(this.#dir, "key.pem"), "--tls-auth-clients", "no"];
    const listen = this.options.tls ? ["--port", "0", "--tls-port", String(this.port), ...tls] : ["--port", String(this.port)];
    const args = [...listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.#dir];
    if (this.options.password !== undefined) args.push("--requirepass", this.options.password);
    if (this.options.maxMessageBytes !== undefined) args.push("--proto-max-bulk-len", String(this.options.maxMessageBytes));
    return spawn(REDIS_SERVER!, args, { stdio: ["ignore", "pipe", "pipe"] });
  }

  #spawnNats(): ChildProcess {
    const config = join(this.#dir, "nats.conf");
    const lines = [`listen: "127.0.0.1:${this.port}"`];
    if (this.options.maxMessageBytes !== undefined) lines.push(`max_payload: ${this.options.maxMessageBytes}`);
    if (this.options.tls) lines.push(`tls { cert_file: "${join(this.#dir, "cert.pem")}", key_file: "${join(this.#dir, "key.pem")}" }`);
    if (this.options.token !== undefined) lines.push(`authorization { token: "${this.options.token}" }`);
    else if (this.options.user !== undefined) lines.push(`authorization { user: "${this.options.user}", password: "${this.options.password}" }`);
    writeFileSync(config, lines.join("\n") + "\n");
    return spawn(NATS_SERVER!, ["-c", config], { stdio: ["ignore", "pipe", "pipe"] });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
