//! Assertions on responses: status, problem documents, validation errors naming a field.

/// Asserts a response's status (showing the body if it differs) and returns its JSON body
/// (null when it has none).
pub async fn ok(res: reqwest::Response, status: reqwest::StatusCode) -> serde_json::Value {
    let got = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// Asserts an RFC 9457 problem with `status` and `code`, and returns its body.
pub async fn problem(
    res: reqwest::Response,
    status: reqwest::StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "status {}",
        res.status()
    );
    let body = ok(res, status).await;
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    body
}

/// Asserts a 422 whose errors name `field`.
pub async fn invalid(res: reqwest::Response, field: &str) -> serde_json::Value {
    let body = problem(
        res,
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&field),
        "expected an error on {field}, got {body}"
    );
    body
}
