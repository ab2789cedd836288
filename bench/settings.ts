/** A benchmark setting from the environment (BENCH_*), or its default; anything but a positive number stops the bench. */
export function positiveSetting(name: string, dflt: number): number {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}
