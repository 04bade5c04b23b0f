// Command-line flags of the bench runners (run.mjs, ws.mjs): `--flag value` or `--flag=value`.

/**
 * Calls onFlag(flag, arg, read) for each argument of `argv` (arg is the whole argument, for messages). read.value()
 * takes the flag's value (the inline one, else the next argument), read.number(min, text = read.value()) a number
 * ≥ min, read.list(text) a comma-separated list; a missing or bad value goes to fail(message), which must exit.
 */
export function eachFlag(argv, fail, onFlag) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes("=") ? arg.split(/=(.*)/s) : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) fail(`${flag} needs a value`);
      return v;
    };
    const number = (min, text = value()) => {
      const n = Number(text);
      if (!Number.isFinite(n) || n < min) fail(`${flag} expects a number ≥ ${min}`);
      return n;
    };
    const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
    onFlag(flag, arg, { value, number, list });
  }
}
