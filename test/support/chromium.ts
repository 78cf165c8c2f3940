import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it on a fresh machine). */
export const CHROMIUM_PATH = process.env.DPF_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launches the system's Chromium, headless, for the browser tests: playwright-core downloads no
 * browser of its own. The flags keep it from reaching out (updates, first-run pages) and from
 * needing a GPU or a sandbox (the tests run as root in a container).
 */
export async function launchChromium(): Promise<Browser> {
  try {
    return await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  } catch (error) {
    throw new Error(
      `The browser tests need Chromium at ${CHROMIUM_PATH}, which did not start (${(error as Error).message.split('\n')[0]}). ` +
        'Install it (apt-get install -y chromium) or set DPF_TEST_CHROMIUM to its path.',
    );
  }
}
