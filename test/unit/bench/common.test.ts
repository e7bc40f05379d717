import { describe, expect, it } from 'vitest';
import { FRAME_BYTES, SILENT_FRAME_BASE64, readMarker, speechFrameBase64, writeSpeechFrame } from '../../../bench/common.js';
import { isSilentFrame } from '../../../media/silence.js';

// The bench counts a marked frame that never reaches the bot as speech lost: it must be speech to the playout
// buffer, which may drop or shorten silence, and the silence between words must carry no marker.
describe('bench frames', () => {
  it('a speech frame is marked and is speech to media/silence.ts, in both of its encodings', () => {
    const frame = Buffer.alloc(FRAME_BYTES);
    writeSpeechFrame(frame, 0, 4242);
    expect(readMarker(frame, 0)).toBe(4242);
    expect(isSilentFrame(frame)).toBe(false);
    expect(Buffer.from(speechFrameBase64(4242), 'base64')).toEqual(frame);
  });

  it('a silent frame is pure μ-law silence with no marker anywhere', () => {
    const frame = Buffer.from(SILENT_FRAME_BASE64, 'base64');
    expect(frame).toEqual(Buffer.alloc(FRAME_BYTES, 0xff));
    expect(isSilentFrame(frame)).toBe(true);
    for (let o = 0; o < FRAME_BYTES; o++) expect(readMarker(frame, o)).toBe(-1);
  });

  it('a speech frame holds its marker only at its start, so the bot finds each frame once', () => {
    const frame = Buffer.alloc(FRAME_BYTES);
    writeSpeechFrame(frame, 0, 7);
    for (let o = 1; o < FRAME_BYTES; o++) expect(readMarker(frame, o)).toBe(-1);
  });
});
