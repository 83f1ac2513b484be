import { useState, type FormEvent } from 'react';
import { FormField, Input } from '@wix/design-system';
import { ApiError, type FieldErrors } from '../api';

/** Turns anything thrown by a request into an ApiError the form can show. */
export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'network', 'The server could not be reached.');
}

/** Submit handling shared by the sign-in forms: busy flag, error, per-field messages. */
export function useSubmit(action: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  const fields: FieldErrors = error?.fields ?? {};
  /** The error to show above the form: one that no field explains. */
  const formError = error && Object.keys(fields).length === 0 ? error : null;
  return { busy, fields, formError, submit };
}

interface TextFieldProps {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  error?: string;
  type?: 'text' | 'email' | 'password';
  autocomplete?: string;
  info?: string;
}

/** A labelled input whose label is tied to the control and which shows its field error. */
export function TextField({ id, label, value, onChange, error, type = 'text', autocomplete, info }: TextFieldProps) {
  return (
    <FormField label={label} labelPlacement="top" id={id} infoContent={info}>
      <Input
        id={id}
        ariaLabel={label}
        type={type}
        autocomplete={autocomplete as never}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        status={error ? 'error' : undefined}
        statusMessage={error}
      />
    </FormField>
  );
}
