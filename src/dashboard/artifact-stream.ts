import { Readable } from 'node:stream';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { openArtifactFile } from './artifact-file.js';

/**
 * An artifact's bytes as a stream, read from its local file (the object itself on a local stage;
 * a temporary copy for a packed one or one on S3, removed once the stream has ended), so a
 * download of a big artifact never holds it in memory. Resolves once the bytes start.
 */
export function artifactStream(details: SinglePartitionDetails, name: string): Promise<{ body: ReadableStream<Uint8Array>; bytes: number }> {
  return new Promise((resolve, reject) => {
    let started = false;
    details.artifacts
      .get(name, async (path) => {
        const handle = await openArtifactFile(path, name);
        const { size } = await handle.stat();
        const file = handle.createReadStream();
        const ended = new Promise<void>((done) => {
          file.once('close', () => done());
        });
        started = true;
        resolve({ body: Readable.toWeb(file) as ReadableStream<Uint8Array>, bytes: size });
        // The copy stays until the client has read it all (or went away).
        await ended;
      })
      .catch((error: unknown) => {
        if (!started) reject(error as Error);
      });
  });
}
