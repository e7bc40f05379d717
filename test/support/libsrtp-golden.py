#!/usr/bin/python3
"""Prints SRTP packets protected by libsrtp (the reference implementation), for test/unit/media/srtp-golden.ts.

apt-get install -y python3-pylibsrtp && /usr/bin/python3 test/support/libsrtp-golden.py
Master key and salt are RFC 3711 Appendix B.3's. Sequence numbers cross a wrap, so the ROC becomes 1.
"""
import struct
from pylibsrtp import Policy, Session

KEY = bytes.fromhex('E1F97A0D3E018BE0D64FA32C06DE4139' '0EC675AD498AFEEBB6960B3AABE6')
SSRC = 0x5EED1234
session = Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
for seq in [65534, 65535, 0, 1]:
    header = struct.pack('!BBHII', 0x80, 0, seq, (seq * 160) & 0xFFFFFFFF, SSRC)
    payload = bytes((i * 7 + seq) & 0xFF for i in range(160))
    print(f"  [{seq}, '{session.protect(header + payload).hex()}'],")

# SRTCP (§3.4): three reports in a row; libsrtp numbers them from 1 (RFC 3711 says 0), so 1, 2, 3. Each is an SR with one report block
# (52 bytes) whose bytes 8.. are i * 11 + n.
print('SRTCP')
for n in range(3):
    body = bytes((i * 11 + n) & 0xFF for i in range(44))
    rtcp = struct.pack('!BBHI', 0x81, 200, 12, SSRC) + body
    print(f"  '{session.protect_rtcp(rtcp).hex()}',")
