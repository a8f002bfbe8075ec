// Inbound TLS handshake failures → a short, bounded `reason` label for
// weft_tls_handshake_failures_total{direction="inbound",reason}.

export function tlsFailureReason(err: Error, authorizationError?: Error | string): string {
  // Node verifies the client chain itself and, when it fails, drops the connection without an
  // alert: the error is then a bare "socket hang up" and the cause is the socket's authorizationError.
  if (authorizationError) return "bad_certificate";
  const code = (err as { code?: string }).code ?? "";
  const msg = err.message;
  if (code === "ECONNRESET" || code === "EPIPE") return "reset";
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(code + msg))
    return "no_client_certificate";
  if (
    /UNKNOWN_CA|CERTIFICATE_VERIFY_FAILED|BAD_CERTIFICATE|CERT_|unable to get|self.signed/i.test(code + msg)
  ) {
    return "bad_certificate";
  }
  if (/HTTP_REQUEST|WRONG_VERSION_NUMBER|UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW/i.test(code + msg))
    return "protocol";
  if (/NO_APPLICATION_PROTOCOL|ALPN/i.test(code + msg)) return "alpn";
  if (/timeout/i.test(code + msg)) return "timeout";
  return "handshake";
}
