"""Attribution: Captum methods, their trust checks, unit and token attributions."""
