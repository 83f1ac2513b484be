import { Suspense, useCallback, useEffect, useState } from 'react';
import { NavLink, Outlet, useNavigate } from 'react-router-dom';
import {
  Badge,
  Box,
  Button,
  Card,
  Heading,
  SectionHelper,
  SkeletonGroup,
  SkeletonLine,
  SkeletonRectangle,
  Text,
} from '@wix/design-system';
import { ApiError, SESSION_EXPIRED, api, type Me } from '../api';
import { MeContext } from '../meContext';
import './AppFrame.css';

const NAVIGATION = [
  { to: '/', label: 'Home', end: true },
  { to: '/products', label: 'Products', end: false },
  { to: '/optimizer', label: 'Optimizer', end: false },
  { to: '/queue', label: 'Queue', end: false },
  { to: '/jobs', label: 'Completed', end: false },
  { to: '/stores', label: 'Stores', end: false },
  { to: '/billing', label: 'Billing', end: false },
  { to: '/account', label: 'Account', end: false },
];

export default function AppFrame({ embedded }: { embedded: boolean }) {
  const navigate = useNavigate();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);

  useEffect(() => {
    let cancelled = false;
    setError(null);
    api
      .me()
      .then((loaded) => !cancelled && setMe(loaded))
      .catch((err: unknown) => {
        if (cancelled) return;
        const apiError =
          err instanceof ApiError ? err : new ApiError(0, 'network', 'The server could not be reached.');
        if (apiError.status === 401 && !embedded) {
          navigate('/login', { replace: true });
          return;
        }
        setError(apiError);
      });
    return () => {
      cancelled = true;
    };
  }, [attempt, embedded, navigate]);

  return (
    <div className="uo-frame">
      <header className="uo-header">
        <Box verticalAlign="middle" gap="12px">
          <Heading size="small" as="h1">
            Ultimate Optimizer
          </Heading>
          {me && (
            <Text size="small" secondary dataHook="account-name">
              {me.account.name}
            </Text>
          )}
        </Box>
        <Box verticalAlign="middle" gap="12px" dataHook="header-credits">
          {me ? (
            <>
              <Badge skin="neutralStandard" size="small" dataHook="plan-badge">
                {me.plan.name} plan
              </Badge>
              <Text size="small" weight="bold" dataHook="credits-summary">
                {me.credits.remaining.toLocaleString()} / {me.credits.total.toLocaleString()} credits
              </Text>
            </>
          ) : (
            !error && (
              <SkeletonGroup skin="light">
                <SkeletonLine width="180px" />
              </SkeletonGroup>
            )
          )}
        </Box>
      </header>
      <div className="uo-body">
        <nav className="uo-nav" aria-label="Main">
          {NAVIGATION.map((item) => (
            <NavLink
              key={item.to}
              to={item.to}
              end={item.end}
              className={({ isActive }) => (isActive ? 'uo-nav-link active' : 'uo-nav-link')}
            >
              {item.label}
            </NavLink>
          ))}
        </nav>
        <main className="uo-main">
          {error ? (
            <FrameError error={error} embedded={embedded} onRetry={reload} />
          ) : me ? (
            <MeContext.Provider value={{ me, reload }}>
              <Suspense fallback={<LoadingCards />}>
                <Outlet />
              </Suspense>
            </MeContext.Provider>
          ) : (
            <LoadingCards />
          )}
        </main>
      </div>
    </div>
  );
}

function FrameError({ error, embedded, onRetry }: { error: ApiError; embedded: boolean; onRetry: () => void }) {
  const expired = embedded && error.code === SESSION_EXPIRED;
  return (
    <Card>
      <Card.Content>
        <Box direction="vertical" gap="12px" dataHook="frame-error">
          <SectionHelper appearance="danger" title={expired ? 'Your session expired' : 'Something went wrong'}>
            {expired
              ? 'To continue, reopen the app from your Wix dashboard.'
              : `We could not load your account: ${error.message}`}
          </SectionHelper>
          {!expired && (
            <Box>
              <Button size="small" onClick={onRetry} dataHook="retry">
                Try again
              </Button>
            </Box>
          )}
        </Box>
      </Card.Content>
    </Card>
  );
}

function LoadingCards() {
  return (
    <Box direction="vertical" gap="24px" role="status" aria-label="Loading your account">
      <SkeletonGroup skin="light">
        <SkeletonLine width="240px" />
      </SkeletonGroup>
      <Box gap="24px">
        {[0, 1].map((key) => (
          <Box key={key} width="50%">
            <SkeletonGroup skin="light">
              <SkeletonRectangle height="180px" />
            </SkeletonGroup>
          </Box>
        ))}
      </Box>
    </Box>
  );
}
