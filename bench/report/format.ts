/** Number formatting for the report: enough digits to compare, no more. */

export function ms(x: number): string {
  if (!Number.isFinite(x)) return "–";
  if (x < 10) return x.toFixed(2);
  if (x < 100) return x.toFixed(1);
  return Math.round(x).toLocaleString("en-US");
}

export function rate(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–";
}

export function ratio(values: readonly number[], mid: number): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0 || !Number.isFinite(mid)) return "–";
  const digits = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
  if (finite.length === 1) return `${digits(mid)}×`;
  return `${digits(mid)}× (${digits(Math.min(...finite))}–${digits(Math.max(...finite))})`;
}

export function mib(kib: number): string {
  if (!Number.isFinite(kib)) return "–";
  return (kib / 1024).toFixed(kib < 10 * 1024 ? 2 : 1);
}

export function bytes(n: number): string {
  if (n >= 1024 * 1024) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024) return `${n / 1024} KiB`;
  return `${n} B`;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
