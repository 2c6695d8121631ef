//! E-mail sink: SMTP through lettre (tokio, rustls with the system roots or `smtp-ca-file`).
//! STARTTLS (default, port 587), implicit TLS (465) or plain to a local relay (25);
//! optional authentication.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{NotifierConfig, SmtpTls};
use super::template::{Lang, Rendered, render};
use super::{DeliveryError, NotifyError};
use crate::alert::Notification;

/// A configured SMTP notifier.
pub struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// For logs: `host:port`.
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    lang: Lang,
}

impl EmailSink {
    pub fn new(cfg: &NotifierConfig) -> Result<Self, NotifyError> {
        let err = |message: String| NotifyError::Config {
            name: cfg.name.clone(),
            message,
        };
        let host = cfg
            .smtp_host
            .clone()
            .ok_or_else(|| err("`smtp-host` is required".into()))?;
        let mode = cfg.smtp_tls.unwrap_or_default();
        let port = cfg.smtp_port.unwrap_or(match mode {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        });
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(Duration::from_millis(cfg.timeout.as_ms())));
        if mode != SmtpTls::None {
            let mut params = TlsParameters::builder(host.clone());
            if let Some(path) = &cfg.smtp_ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    err(format!(
                        "`smtp-ca-file`: cannot read {}: {e}",
                        path.display()
                    ))
                })?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| err(format!("`smtp-ca-file`: {}: {e}", path.display())))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| err(format!("cannot set up TLS toward {host}: {e}")))?;
            builder = builder.tls(match mode {
                SmtpTls::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let (Some(user), Some(password)) = (&cfg.username, cfg.password().map_err(err)?) {
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from = cfg
            .from
            .as_deref()
            .ok_or_else(|| err("`from` is required".into()))?
            .parse()
            .map_err(|e| err(format!("`from`: {e}")))?;
        let to = cfg
            .to
            .iter()
            .map(|t| t.parse().map_err(|e| err(format!("`to`: {t:?}: {e}"))))
            .collect::<Result<Vec<Mailbox>, _>>()?;
        Ok(Self {
            transport: builder.build(),
            server: format!("{host}:{port}"),
            from,
            to,
            lang: cfg.lang,
        })
    }

    /// The message for one notification (no I/O).
    pub fn message(&self, n: &Notification) -> Result<Message, DeliveryError> {
        let Rendered { subject, body, .. } = render(n, self.lang);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder.body(body).map_err(|e| DeliveryError {
            retry: false,
            message: format!("cannot build the e-mail: {e}"),
        })
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let message = self.message(n)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(DeliveryError {
                // A permanent SMTP refusal (5xx: unknown recipient, relay denied) will not
                // get better by retrying; everything else might.
                retry: !e.is_permanent(),
                message: format!(
                    "SMTP server {}: {e}{}",
                    self.server,
                    if e.is_permanent() {
                        " — check `from`, `to`, `username` and the relay's rules"
                    } else {
                        ""
                    }
                ),
            }),
        }
    }
}
