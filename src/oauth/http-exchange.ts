import type { Got, OptionsInit } from 'got';
import type { IncomingHttpHeaders } from 'node:http';

export type Exchange =
  | {
      readonly kind: 'answered';
      readonly status: number;
      readonly headers: IncomingHttpHeaders;
      /** Undefined when the body went over the size limit (reading stopped there). */
      readonly body: string | undefined;
    }
  | {
      readonly kind: 'failed';
      readonly error: unknown;
      /** Set when response headers had arrived before the failure. */
      readonly status: number | undefined;
    };

/**
 * Sends (POST unless `options.method` says otherwise) and reads the answer, at most `maxBodyBytes` of it (after decompression, so a small gzip
 * bomb is caught too). A stream rather than got's promise API, which has no size limit and
 * buffers whatever the server sends. Never rejects: failures are an `Exchange` too.
 */
export const sendForExchange = (http: Got, url: string, options: OptionsInit, maxBodyBytes: number): Promise<Exchange> =>
  new Promise((resolve) => {
    let response: { statusCode: number; headers: IncomingHttpHeaders } | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let stream: ReturnType<Got['stream']>;
    try {
      stream = http.stream(url, { method: 'POST', ...options });
    } catch (error) {
      resolve({ kind: 'failed', error, status: undefined });
      return;
    }
    stream.on('response', (answer: { statusCode: number; headers: IncomingHttpHeaders }) => {
      response = answer;
    });
    stream.on('data', (chunk: Buffer) => {
      if (response === undefined) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        chunks.length = 0;
        resolve({ kind: 'answered', status: response.statusCode, headers: response.headers, body: undefined });
        stream.destroy();
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (response === undefined) {
        resolve({ kind: 'failed', error: new Error('the stream ended without a response'), status: undefined });
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      resolve({ kind: 'answered', status: response.statusCode, headers: response.headers, body });
    });
    stream.on('error', (error: unknown) => {
      resolve({ kind: 'failed', error, status: response?.statusCode });
    });
  });
