// drachtio-srf's bundled typings miss the standalone SIP parser; this is the part both SIP backends use.
declare module 'drachtio-srf/lib/sip-parser/message.js' {
  interface ParsedUri {
    family: string;
    scheme: string;
    user?: string;
    host: string;
    port: number | null;
    params: Record<string, string | null>;
    headers: Record<string, string>;
  }
  class SipMessage {
    /** throws Error('failed to parse sip message') on a start line or header it cannot read */
    constructor(raw?: string);
    headers: Record<string, string>;
    body: string;
    method?: string;
    uri?: string;
    status?: number;
    reason?: string;
    raw?: string;
    readonly type: 'request' | 'response' | 'unknown';
    get(name: string): string | undefined;
    has(name: string): boolean;
    set(name: string, value: string): this;
    /** throws when the header is absent */
    getParsedHeader(name: 'via'): Array<{ version: string; protocol: string; host: string; port?: number; params: Record<string, string | null> }>;
    getParsedHeader(name: 'from' | 'to'): { name?: string; uri: string; params: Record<string, string | null> };
    getParsedHeader(name: 'contact'): Array<{ name?: string; uri: string; params: Record<string, string | null> }>;
    getParsedHeader(name: 'cseq'): { seq: number; method: string };
    toString(): string;
    static parseUri(uri: string): ParsedUri | undefined;
  }
  export = SipMessage;
}
