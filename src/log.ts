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
  'code',
  'authorization',
  'Authorization',
  'token',
  'data',
  'stringData',
];

export const redactedPaths = [...secretFields, ...secretFields.map((field) => `*.${field}`), '*.headers.authorization'];

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
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
