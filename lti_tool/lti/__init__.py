"""Everything LTI 1.3: registrations for pylti1p3, login/launch, storage, roles, keys, dynamic registration."""
