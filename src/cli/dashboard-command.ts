import { startDashboard } from '../dashboard/server.js';
import { redact } from '../dashboard/redact.js';

/** `dpf dashboard`: serves the stage's runs until SIGINT or SIGTERM, then stops listening. */
export async function runDashboard(options: { stage: string; port: number; host: string; token?: string }): Promise<void> {
  const dashboard = await startDashboard({ stage: options.stage, port: options.port, host: options.host, token: options.token });
  process.stdout.write(`dpf dashboard: ${dashboard.url} (stage ${redact(options.stage)}) — Ctrl-C stops it\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await dashboard.close();
  const reruns = dashboard.reruns;
  if (reruns.length > 0) {
    // The runs it started run in this process: they end before it does (Ctrl-C again stops them cleanly).
    process.stdout.write(`dpf dashboard: stopped; waiting for the ${reruns.length} rerun(s) it started to end (Ctrl-C again cancels them)\n`);
    await Promise.all(reruns.map((run) => run.wait().catch(() => undefined)));
  }
}
