/**
 * Crash points for kill tests: with `<VARIABLE>=<step>[:<n>]` in its environment, a process
 * SIGKILLs itself the n-th time (default the first) it reaches the named step, so that a test can
 * stop it between any two steps of a protocol. Without the variable a crash point costs one
 * lookup.
 */
const reached = new Map<string, number>();

/** SIGKILLs this process if `variable` names `step` (and this is its n-th time). */
export function crashPoint(variable: string, step: string): void {
  const at = process.env[variable];
  if (at === undefined || at === '') return;
  const [want, nth = '1'] = at.split(':');
  if (want !== step) return;
  const key = `${variable} ${step}`;
  const n = (reached.get(key) ?? 0) + 1;
  reached.set(key, n);
  if (n === Number(nth)) process.kill(process.pid, 'SIGKILL');
}
