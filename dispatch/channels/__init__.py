"""One module per way of sending, all behind ``base.Channel``; ``make`` picks them from settings:
SMTP when a mail host is configured, else a local Maildir; the SMS provider when its URL is
configured, else a local file."""
from __future__ import annotations

from pathlib import Path

from config import ConfigError, Settings
from dispatch.channels.base import Channel


def make(settings: Settings) -> dict[str, Channel]:
    """The email and SMS channels these settings ask for."""
    from dispatch.channels import email, maildir, sms_file, sms_kavenegar

    if settings.smtp_security not in email.SECURITY:
        raise ConfigError(f"smtp_security must be one of {', '.join(email.SECURITY)}, "
                          f"not {settings.smtp_security!r}")
    mail = (email.Smtp(settings) if settings.smtp_host
            else maildir.Maildir(settings.maildir or str(Path(settings.data_dir, "maildir"))))
    if settings.sms_url and not settings.sms_api_key:
        raise ConfigError("sms_url is set but sms_api_key is not")
    sms = (sms_kavenegar.Kavenegar(settings) if settings.sms_url
           else sms_file.SmsFile(settings.sms_file or str(Path(settings.data_dir, "sms.log"))))
    return {"email": mail, "sms": sms}
