// pino JSON logs. Secret values are never handed to the logger; the redaction list is the second
// line of defence for fields that would hold one if a future change made that mistake.
import { pino, type DestinationStream, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;

const secretFields = [
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'client_secret',
  'clientSecret',
  'code_verifier',
  'codeVerifier',
  'authorization',
  'Authorization',
  'cookie',
  '["set-cookie"]',
  'token',
  'data',
  'stringData',
];

// `code` is redacted only where it is an OAuth authorization code (a query or a grant); elsewhere
// it is a diagnostic such as ECONNRESET, which a log reader needs.
const oauthCodePaths = ['query.code', 'grant.code', 'oauthCode'];

// An error's cause (and the cause's cause), and the request options some HTTP clients attach to
// their errors, are where a secret would hide one level deeper than `*.` reaches.
const nestings = ['', '*.', '*.cause.', '*.cause.cause.', '*.headers.', '*.options.', '*.options.headers.', '*.request.', '*.response.headers.'];

const joined = (prefix: string, field: string) => (field.startsWith('[') ? `${prefix.replace(/\.$/, '')}${field}` : `${prefix}${field}`);

export const redactedPaths = [...new Set(nestings.flatMap((prefix) => [...secretFields, ...oauthCodePaths].map((field) => joined(prefix, field))))];

export interface LoggerOptions {
  level: LevelWithSilent;
  destination?: DestinationStream;
}

export function createLogger({ level, destination }: LoggerOptions): Logger {
  return pino(
    {
      level,
      base: { component: 'oauthapp-operator' },
      redact: { paths: redactedPaths, censor: '[redacted]' },
      // "level":"info", not "level":30: readable without pino's table.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
