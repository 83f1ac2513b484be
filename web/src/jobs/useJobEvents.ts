// Live job updates: the server-sent event stream of the account's jobs, with polling every
// few seconds while the stream is unavailable (and a new attempt at the stream later).
import { useEffect, useRef, useState } from 'react';
import { jobEventsUrl, type Job } from '../api';

export type UpdateMode = 'connecting' | 'live' | 'polling';

const POLL_MS = 3_000;
const RECONNECT_MS = 30_000;

/**
 * Calls `onJob` for every job event. While the stream is down, calls `poll` every 3 s
 * instead; `poll` also runs whenever the stream opens, to catch up on changes made before
 * it listened.
 */
export function useJobEvents(onJob: (job: Job) => void, poll: () => Promise<void> | void): UpdateMode {
  const [mode, setMode] = useState<UpdateMode>('connecting');
  const onJobRef = useRef(onJob);
  const pollRef = useRef(poll);
  onJobRef.current = onJob;
  pollRef.current = poll;

  useEffect(() => {
    let source: EventSource | null = null;
    let pollTimer: ReturnType<typeof setInterval> | undefined;
    let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;

    const open = () => {
      if (stopped) return;
      if (typeof EventSource === 'undefined') {
        startPolling();
        return;
      }
      source = new EventSource(jobEventsUrl());
      source.onopen = () => {
        clearInterval(pollTimer);
        setMode('live');
        // The stream reports changes from the moment it opens: catch up on the ones before
        // (the page's first load may have been answered a moment earlier).
        void pollRef.current();
      };
      source.addEventListener('job', (event) => {
        try {
          onJobRef.current(JSON.parse((event as MessageEvent<string>).data) as Job);
        } catch {
          // A malformed event is skipped; the next one or the next poll brings the state.
        }
      });
      source.onerror = () => {
        source?.close();
        source = null;
        startPolling();
      };
    };

    const startPolling = () => {
      if (stopped) return;
      setMode('polling');
      clearInterval(pollTimer);
      void pollRef.current();
      pollTimer = setInterval(() => void pollRef.current(), POLL_MS);
      // Polling renews an expired session; then the stream gets another chance.
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(open, RECONNECT_MS);
    };

    open();
    return () => {
      stopped = true;
      source?.close();
      clearInterval(pollTimer);
      clearTimeout(reconnectTimer);
    };
  }, []);

  return mode;
}
