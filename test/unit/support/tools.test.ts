import { isAbsolute } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../../support/tools.js';

describe('requireTool', () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  it.each(['sipp', 'espeak-ng', 'sox', 'socat'] as const)('finds %s as an absolute path', (tool) => {
    const found = requireTool(tool);
    expect(isAbsolute(found)).toBe(true);
    expect(found.endsWith(`/${tool}`)).toBe(true);
  });

  it('names the Debian package when a tool is missing', () => {
    process.env.PATH = '/nonexistent';
    expect(() => requireTool('sipp')).toThrow('sipp not found: install it with: apt-get install -y sip-tester');
    expect(() => requireTool('espeak-ng')).toThrow('apt-get install -y espeak-ng');
  });

  it('ignores relative PATH entries', () => {
    process.env.PATH = '.:bin';
    expect(() => requireTool('sox')).toThrow('sox not found');
  });
});
