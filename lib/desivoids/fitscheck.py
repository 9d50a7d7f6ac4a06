"""Is a FITS byte stream complete? One rule for every reader (recon, convert).

astropy opens a file whose last HDU is cut short with only a warning, and stops quietly at a
trailing header cut short; so a reader measures where the HDUs astropy found end (data location
plus data span of the last one) and compares that with the length of the stream.
"""
from __future__ import annotations

__all__ = ["hdus_end", "incompleteness"]


def hdus_end(hdul) -> int:
    """Byte where the last HDU astropy parsed ends (its data padded to 2880-byte blocks)."""
    end = 0
    for hdu in hdul:
        info = hdu.fileinfo()
        end = max(end, info["datLoc"] + info["datSpan"])
    return end


def incompleteness(size: int, end: int) -> str | None:
    """None when the HDUs end exactly at the end of the stream (``size`` bytes), else what is
    wrong: data promised beyond the end (a truncated download), or bytes after the last complete
    HDU that do not form one (an HDU cut short inside its header)."""
    if size < end:
        return f"truncated: {size} bytes on disk, the headers promise {end}"
    if size > end:
        return (f"truncated: {size - end} bytes after the last complete HDU (ends at byte {end}) "
                "do not form a complete HDU")
    return None
