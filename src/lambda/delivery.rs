//! Delivering a custom resource's response to its pre-signed ResponseURL: PUT with retries
//! within the deadline, never following a redirect, the URL (a credential) kept out of errors.

use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("ResponseURL answered HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    #[error("ResponseURL answered a redirect (HTTP {status}); redirects are never followed, so the answer was not delivered")]
    Redirected { status: u16 },
    #[error("could not deliver the response after {attempts} attempt(s): {last}")]
    GaveUp { attempts: u32, last: String },
}

/// PUTs the response with an empty Content-Type (the pre-signed URL's signature covers it),
/// retrying network errors and 5xx with backoff until `deadline`; no attempt outlives it.
/// `http` must not follow redirects (see `response_client`).
pub async fn deliver(http: &reqwest::Client, url: &str, body: String, deadline: Instant) -> Result<u32, DeliveryError> {
    const MAX_ATTEMPTS: u32 = 6;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .timeout(put_timeout(deadline))
            .send()
            .await;
        let last = match sent {
            Ok(response) if response.status().is_success() => {
                tracing::info!(attempt, "CloudFormation response delivered");
                return Ok(attempt);
            }
            Ok(response) if response.status().is_server_error() => format!("HTTP {}", response.status().as_u16()),
            Ok(response) if response.status().is_redirection() => {
                return Err(DeliveryError::Redirected {
                    status: response.status().as_u16(),
                })
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                return Err(DeliveryError::Rejected {
                    status,
                    body: body.chars().take(300).collect(),
                });
            }
            // The URL's query string is a pre-signed credential: keep it out of errors and logs.
            Err(e) => e.without_url().to_string(),
        };
        let delay = Duration::from_millis(250 * (1 << (attempt - 1).min(5)));
        if attempt >= MAX_ATTEMPTS || Instant::now() + delay >= deadline {
            return Err(DeliveryError::GaveUp { attempts: attempt, last });
        }
        tracing::warn!(attempt, error = %last, "CloudFormation response not delivered; retrying");
        tokio::time::sleep(delay).await;
    }
}

/// Ten seconds, or the time left before `deadline` if that is less.
fn put_timeout(deadline: Instant) -> Duration {
    Duration::from_secs(10)
        .min(deadline.saturating_duration_since(Instant::now()))
        .max(Duration::from_millis(1))
}

/// The client for ResponseURL PUTs: a redirect is an answer (refused), never followed.
pub fn response_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds")
}
