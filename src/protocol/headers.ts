/**
 * Parsers for the HTTP header values of the opening handshake: comma-separated lists of tokens
 * (RFC 7230 §7, §3.2.6) and the `Sec-WebSocket-Extensions` grammar (RFC 6455 §9.1).
 *
 * Every syntax error is a `HandshakeError` with status 400 whose message names the header and
 * the problem, so a server can answer it as it is.
 */

import { HandshakeError } from './errors.js';
import type { ExtensionOffer } from './extension.js';

/** A header value as Node's `IncomingMessage.headers` gives it: absent, one line or several. */
export type HeaderValue = string | readonly string[] | undefined;

/** RFC 7230 §3.2.6: `token = 1*tchar`. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 7230 §6.7: `protocol = protocol-name ["/" protocol-version]`, both tokens. */
const PROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?$/;

/** RFC 7230 §3.2.6 `tchar`, one character code at a time (for the extension scanner). */
function isTchar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || // DIGIT
    (code >= 0x41 && code <= 0x5a) || // ALPHA upper
    (code >= 0x61 && code <= 0x7a) || // ALPHA lower
    code === 0x21 || // !
    (code >= 0x23 && code <= 0x27) || // # $ % & '
    code === 0x2a || // *
    code === 0x2b || // +
    code === 0x2d || // -
    code === 0x2e || // .
    code === 0x5e || // ^
    code === 0x5f || // _
    code === 0x60 || // `
    code === 0x7c || // |
    code === 0x7e // ~
  );
}

/**
 * Whether `s` is an RFC 7230 §3.2.6 `token`: one or more of the visible ASCII characters other
 * than the delimiters `"(),/:;<=>?@[\]{}`.
 */
export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

/** Longest header excerpt quoted in an error message: enough to see the problem, no more. */
const MAX_QUOTED = 80;

/** `s` as a JSON string literal, shortened, for error messages. */
function quote(s: string): string {
  return JSON.stringify(s.length > MAX_QUOTED ? `${s.slice(0, MAX_QUOTED)}…` : s);
}

/** Several header lines of one field are one list joined with commas (RFC 7230 §3.2.2). */
function joinLines(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(',');
}

/** OWS = *( SP / HTAB ) (RFC 7230 §3.2.3). */
function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Splits a `#element` list (RFC 7230 §7), skipping empty elements, and checks each one. */
function parseList(
  value: HeaderValue,
  field: string,
  isElement: (s: string) => boolean,
  what: string,
): string[] {
  const joined = joinLines(value);
  if (joined === undefined) return [];
  const elements: string[] = [];
  for (const raw of joined.split(',')) {
    const element = trimOws(raw);
    // RFC 7230 §7: a recipient must accept and ignore empty list elements ("a, , b").
    if (element === '') continue;
    if (!isElement(element)) {
      throw new HandshakeError(`Invalid ${field} header: ${quote(element)} is not ${what}`, 400);
    }
    elements.push(element);
  }
  return elements;
}

/**
 * Parses a comma-separated list of tokens (`#token`, RFC 7230 §7), as in `Connection` and
 * `Sec-WebSocket-Protocol`. Several header lines are read as one list; whitespace around
 * elements and empty elements are ignored. Case is kept: callers that compare
 * case-insensitively (`Connection`) lower-case themselves.
 *
 * @param value - the header value(s); `undefined` gives an empty list.
 * @param field - the header name used in error messages.
 * @throws HandshakeError (400) when an element is not a token.
 */
export function parseTokenList(value: HeaderValue, field = 'token list'): string[] {
  return parseList(value, field, isToken, 'a token');
}

/**
 * Parses the `Upgrade` header (RFC 7230 §6.7): a list of `protocol-name ["/" protocol-version]`,
 * e.g. `websocket` or `HTTP/2.0, websocket`. Otherwise like {@link parseTokenList}.
 *
 * @throws HandshakeError (400) when an element is not a protocol.
 */
export function parseUpgrade(value: HeaderValue): string[] {
  return parseList(value, 'Upgrade', (s) => PROTOCOL.test(s), 'a protocol name');
}

const FIELD = 'Sec-WebSocket-Extensions';
const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const SP = 0x20;
const HTAB = 0x09;

/**
 * A scanner over one `Sec-WebSocket-Extensions` value. Whitespace may appear around every
 * delimiter: RFC 6455 §9.1 writes its ABNF with RFC 2616's implied `*LWS` (§2.1 of RFC 2616).
 */
class ExtensionScanner {
  pos = 0;
  constructor(readonly text: string) {}

  fail(problem: string): never {
    throw new HandshakeError(
      `Invalid ${FIELD} header: ${problem} at position ${this.pos} of ${quote(this.text)}`,
      400,
    );
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): number {
    return this.text.charCodeAt(this.pos);
  }

  skipOws(): void {
    while (!this.atEnd() && (this.peek() === SP || this.peek() === HTAB)) this.pos++;
  }

  token(what: string): string {
    const start = this.pos;
    while (!this.atEnd() && isTchar(this.peek())) this.pos++;
    if (this.pos === start) {
      this.fail(this.atEnd() ? `expected ${what}, found the end` : `expected ${what}`);
    }
    return this.text.slice(start, this.pos);
  }

  /** RFC 7230 §3.2.6 `quoted-string`, with its `quoted-pair`s unescaped. */
  quotedString(): string {
    const open = this.pos;
    this.pos++; // the opening DQUOTE
    let value = '';
    while (true) {
      if (this.atEnd()) {
        this.pos = open;
        this.fail('unterminated quoted string');
      }
      const code = this.peek();
      if (code === DQUOTE) {
        this.pos++;
        return value;
      }
      if (code === BACKSLASH) {
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        this.pos++;
        if (this.atEnd()) {
          this.pos = open;
          this.fail('unterminated quoted string');
        }
        const escaped = this.peek();
        if (!isQuotedPairChar(escaped)) this.fail('invalid character after "\\" in quoted string');
        value += this.text[this.pos];
        this.pos++;
        continue;
      }
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      if (!isQuotedPairChar(code)) this.fail('invalid character in quoted string');
      value += this.text[this.pos];
      this.pos++;
    }
  }
}

/** HTAB / SP / VCHAR / obs-text: what may appear inside a quoted string (RFC 7230 §3.2.6). */
function isQuotedPairChar(code: number): boolean {
  return code === HTAB || (code >= 0x20 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

/**
 * Parses `Sec-WebSocket-Extensions` (RFC 6455 §9.1):
 *
 * ```
 * extension-list = 1#extension
 * extension      = extension-token *( ";" extension-param )
 * extension-param = token [ "=" (token | quoted-string) ]
 * ```
 *
 * Several header lines are one list (RFC 7230 §3.2.2), and empty list elements are skipped
 * (RFC 7230 §7), so an empty value gives no offers. A quoted value is unescaped and must then be
 * a token (RFC 6455 §9.1). Offers and parameters are returned in order with duplicates kept:
 * whether a duplicate is an error is the extension's call (RFC 7692 §7 rejects them).
 *
 * @param value - the header value(s); `undefined` gives an empty list.
 * @throws HandshakeError (400) naming the problem and its position.
 */
export function parseExtensions(value: HeaderValue): ExtensionOffer[] {
  const joined = joinLines(value);
  if (joined === undefined) return [];
  const s = new ExtensionScanner(joined);
  const offers: ExtensionOffer[] = [];
  while (true) {
    s.skipOws();
    if (s.atEnd()) break;
    if (s.peek() === COMMA) {
      s.pos++; // RFC 7230 §7: an empty element
      continue;
    }
    const name = s.token('an extension name');
    const params: Array<readonly [string, string | true]> = [];
    s.skipOws();
    while (!s.atEnd() && s.peek() === SEMICOLON) {
      s.pos++;
      s.skipOws();
      const paramName = s.token('a parameter name');
      s.skipOws();
      let paramValue: string | true = true;
      if (!s.atEnd() && s.peek() === EQUALS) {
        s.pos++;
        s.skipOws();
        if (!s.atEnd() && s.peek() === DQUOTE) {
          const start = s.pos;
          paramValue = s.quotedString();
          // RFC 6455 §9.1: "the value MUST conform to the 'token' ABNF" after unquoting.
          if (!isToken(paramValue)) {
            s.pos = start;
            s.fail(`the quoted value of parameter "${paramName}" is not a token`);
          }
        } else {
          paramValue = s.token(`a value for parameter "${paramName}"`);
        }
        s.skipOws();
      }
      params.push([paramName, paramValue]);
    }
    offers.push({ name, params });
    if (s.atEnd()) break;
    if (s.peek() !== COMMA) s.fail('expected ";" or ","');
    s.pos++;
  }
  return offers;
}

/** `s` as an RFC 7230 §3.2.6 quoted-string: `"` and `\` escaped with `\`. */
function quoteString(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Writes extension offers as a `Sec-WebSocket-Extensions` value, the inverse of
 * {@link parseExtensions}: `name; param; param=value, name2`. Token values are written bare,
 * other values as quoted strings (which {@link parseExtensions} would reject, RFC 6455 §9.1).
 *
 * @throws TypeError when a name is not a token or a value holds a character that no
 * quoted-string may carry (control characters such as CR and LF).
 */
export function formatExtensions(list: readonly ExtensionOffer[]): string {
  return list
    .map(({ name, params }) => {
      if (!isToken(name)) throw new TypeError(`Extension name ${quote(name)} is not a token`);
      let out = name;
      for (const [paramName, paramValue] of params) {
        if (!isToken(paramName)) {
          throw new TypeError(`Extension parameter name ${quote(paramName)} is not a token`);
        }
        out += `; ${paramName}`;
        if (paramValue === true) continue;
        if (isToken(paramValue)) {
          out += `=${paramValue}`;
          continue;
        }
        for (let i = 0; i < paramValue.length; i++) {
          if (!isQuotedPairChar(paramValue.charCodeAt(i))) {
            throw new TypeError(
              `Extension parameter "${paramName}" has a value that cannot be written in a header`,
            );
          }
        }
        out += `=${quoteString(paramValue)}`;
      }
      return out;
    })
    .join(', ');
}
