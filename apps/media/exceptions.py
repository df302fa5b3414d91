"""Media errors, each with a stable code."""

from apps.core.exceptions import DomainError, PayloadTooLargeError, UnsupportedMediaError


class MediaEmptyError(DomainError):
    default_code = "media.empty"
    default_message = "The file is empty."


class MediaTooLargeError(PayloadTooLargeError):
    default_code = "media.too_large"


class MediaUnsupportedError(UnsupportedMediaError):
    default_code = "media.unsupported_type"


class MediaCorruptError(UnsupportedMediaError):
    default_code = "media.corrupt"
    default_message = "The file is damaged and could not be decoded."


class MediaBombError(PayloadTooLargeError):
    default_code = "media.decompression_bomb"


class ArchiveError(DomainError):
    default_code = "media.bad_archive"


class ArchiveTooLargeError(PayloadTooLargeError):
    default_code = "media.archive_too_large"


class UrlRefusedError(DomainError):
    default_code = "media.url_refused"


class UrlFetchError(DomainError):
    default_code = "media.url_fetch_failed"


class FocusBoxError(DomainError):
    default_code = "media.bad_focus"
    default_message = "A focus box is four numbers x0, y0, x1, y1 between 0 and 1, with x0 < x1 and y0 < y1."
