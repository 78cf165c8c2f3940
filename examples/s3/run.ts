import { DPF, DPFRun } from 'dpf';

// A stage on S3. Region, credentials and endpoint come from the standard AWS environment and
// config files: AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and for MinIO,
// Ceph or R2 AWS_ENDPOINT_URL (dpf then uses path-style addressing).
const bucket = process.env.DPF_BUCKET ?? 'my-dpf-bucket';
const dpf = new DPF(new URL('../quickstart/process.ts', import.meta.url), { stage: `s3://${bucket}/stage` });

// Stage mode over objects on S3: every key under the prefix that matches the pattern is one
// partition; each worker reads its own object (data.path is its s3:// URL).
const run = await dpf.runFromStage({ stageLocation: `s3://${bucket}/input/`, filePattern: '*.csv', runId: 'store-sales-s3', onExistingArtifacts: 'overwrite' });
console.log(await run.wait());

// Any process, on any machine that reaches the bucket, restores the run from the stage alone.
const restored = await DPFRun.restoreFrom('store-sales-s3', `s3://${bucket}/stage`);
const berlin = (await restored.getPartitionDetails())['berlin.csv']!;
console.log(await berlin.artifacts.get('summary.json'));
