import { parseArgs } from 'node:util';
import { z } from 'zod';

const Port = z.coerce.number().int().min(0).max(65_535);

const CliConfigSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: Port.default(8090),
  expiresIn: z.coerce.number().int().positive().optional(),
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  redirectUri: z.url().default('http://127.0.0.1:8081/oauth/callback'),
  apiDomain: z.url().optional(),
});

export type CliConfig = z.infer<typeof CliConfigSchema>;

/** Flag name for each config field, for error messages. */
const FLAGS: Readonly<Record<keyof CliConfig, string>> = {
  host: '--host',
  port: '--port',
  expiresIn: '--expires-in',
  clientId: '--client-id',
  clientSecret: '--client-secret',
  redirectUri: '--redirect-uri',
  apiDomain: '--api-domain',
};

export type CliConfigResult = { ok: true; config: CliConfig } | { ok: false; message: string };

/**
 * Flags win over environment variables (`SANDBOX_HOST`, `SANDBOX_PORT`, `SANDBOX_EXPIRES_IN`,
 * `SANDBOX_CLIENT_ID`, `SANDBOX_CLIENT_SECRET`, `SANDBOX_REDIRECT_URI`, `SANDBOX_API_DOMAIN`).
 */
export const parseCliConfig = (
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliConfigResult => {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: Object.fromEntries(Object.values(FLAGS).map((flag) => [flag.slice(2), { type: 'string' }])),
    }));
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  const raw = Object.fromEntries(
    Object.entries(FLAGS).map(([key, flag]) => {
      const envName = `SANDBOX_${flag.slice(2).replaceAll('-', '_').toUpperCase()}`;
      const value = values[flag.slice(2)] ?? env[envName];
      return [key, value === '' ? undefined : value];
    }),
  );
  const parsed = CliConfigSchema.safeParse(raw);
  if (parsed.success) return { ok: true, config: parsed.data };
  const issue = parsed.error.issues[0];
  const field = issue?.path[0];
  const flag = typeof field === 'string' && field in FLAGS ? FLAGS[field as keyof CliConfig] : 'arguments';
  return { ok: false, message: `invalid ${flag}: ${issue?.message ?? 'invalid value'}` };
};
