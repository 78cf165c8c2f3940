import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 's3-server-main.mjs');

/** Faults the server injects (see s3-server-main.mjs). */
export interface S3Faults {
  /** Fraction of object requests answered 500/503. */
  rate?: number;
  /** Fraction of those failed only after they took effect. */
  after?: number;
  delayRate?: number;
  delayMs?: number;
  seed?: number;
}

/** Requests the server answered, by kind. */
export interface S3Stats {
  PUT: number;
  GET: number;
  HEAD: number;
  LIST: number;
  DELETE: number;
  POST: number;
  faults: number;
  /** CPU seconds the server used since the last reset. */
  cpuSeconds: number;
}

/** A running S3-compatible server (s3rver behind dpf's semantics and fault layer) on a free loopback port. */
export interface S3TestServer {
  endpoint: string;
  /** The environment that points the AWS SDK (and so dpf) at it. */
  env: Record<string, string>;
  createBucket(name: string): Promise<void>;
  setFaults(faults: S3Faults): Promise<void>;
  /** Whether the server honours conditional writes (false: as s3rver alone, which ignores them). */
  honourConditions(honour: boolean): Promise<void>;
  /** Holds every write whose key contains `match` until {@link S3TestServer.release} (a barrier). */
  hold(match: string): Promise<void>;
  /** How many writes the hold keeps waiting. */
  held(): Promise<number>;
  release(): Promise<void>;
  stats(): Promise<S3Stats>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the server in its own process. s3rver's paged listings need `--openssl-legacy-provider`
 * (it encrypts continuation tokens with a legacy cipher), hence the process of its own.
 */
export async function startS3Server(): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), 'dpf-s3-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', MAIN, directory], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /READY (\d+)/.exec(output);
      if (match !== null) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the S3 test server exited with code ${code} before it was ready`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const control = async (path: string, body?: unknown): Promise<Response> => {
    const response = await fetch(`${endpoint}${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`S3 test server: ${path} answered ${response.status}`);
    return response;
  };
  return {
    endpoint,
    env,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    setFaults: async (faults) => {
      await control('/__dpf/faults', faults);
    },
    honourConditions: async (honour) => {
      await control('/__dpf/conditional', { honour });
    },
    hold: async (match) => {
      await control('/__dpf/hold', { match });
    },
    held: async () => ((await (await control('/__dpf/held')).json()) as { held: number }).held,
    release: async () => {
      await control('/__dpf/release', {});
    },
    stats: async () => (await (await control('/__dpf/stats')).json()) as S3Stats,
    resetStats: async () => {
      await control('/__dpf/stats/reset', {});
    },
    stop: async () => {
      client.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
