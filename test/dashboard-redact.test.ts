import { describe, expect, it } from 'vitest';
import { redact } from '../src/dashboard/redact.js';

describe('what the dashboard hides of the strings it shows', () => {
  it.each([
    // URLs: the user information up to the last @, as URL parsers split it.
    ['connecting to postgres://admin:p@ssw0rd@db.internal:5432/prod', 'connecting to postgres://db.internal:5432/prod'],
    ['Error: postgres://bob:s3cr@t@pg/db refused', 'Error: postgres://pg/db refused'],
    ['redis://:hunter2/x@cache:6379', 'redis://cache:6379'],
    ['redis://:hunter2@cache', 'redis://cache'],
    // Settings whose name says secret.
    ['host=db password=hunter2 user=x', 'host=db password=*** user=x'],
    ['PGPASSWORD=abc psql', 'PGPASSWORD=*** psql'],
    ['AWS_SECRET_ACCESS_KEY=AKIAXYZ aws s3 ls', 'AWS_SECRET_ACCESS_KEY=*** aws s3 ls'],
    ['http://h:8610/?token=abc&x=1', 'http://h:8610/?token=***&x=1'],
    // JSON.
    ['{"password":"a\\"b","user":"u","secretAccessKey": "zz"}', '{"password":"***","user":"u","secretAccessKey": "***"}'],
  ])('%s', (shown, expected) => {
    expect(redact(shown)).toBe(expected);
    expect(redact(shown)).not.toMatch(/hunter2|p@ssw0rd|s3cr@t|AKIAXYZ|abc&|zz/);
  });

  it('keeps what holds no credential', () => {
    for (const text of ['mail a@b.com', 's3://bucket/prefix', 'redis://host:6379', 'SELECT * FROM t WHERE user = 1', '{"rows": 3}']) expect(redact(text)).toBe(text);
  });
});
