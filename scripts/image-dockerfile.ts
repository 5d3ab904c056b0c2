// Usage: npm run image:dockerfile   Writes container/Dockerfile from the catalog (container/image.ts).
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { renderDockerfile } from "../container/image.ts";
import { catalog } from "../policies/catalog.ts";
import { REPO_ROOT } from "./lib/server-tools.ts";

const file = path.join(REPO_ROOT, "container/Dockerfile");
await writeFile(file, renderDockerfile(catalog));
process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
