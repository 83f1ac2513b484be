import { StrictMode, Suspense, lazy } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter, Navigate, Route, Routes } from 'react-router-dom';
import { WixDesignSystemProvider } from '@wix/design-system';
import '@wix/design-system/styles.global.css';
import { captureInstance, hasStandaloneSession } from './session';
import { PageLoading } from './components/PageLoading';

// Route-level code splitting: the sign-in pages and the signed-in app are separate chunks,
// so nobody downloads the code of pages they cannot see yet.
const LoginPage = lazy(() => import('./pages/LoginPage'));
const RegisterPage = lazy(() => import('./pages/RegisterPage'));
const DemoLoginPage = lazy(() => import('./pages/DemoLoginPage'));
const AppFrame = lazy(() => import('./pages/AppFrame'));
const HomePage = lazy(() => import('./pages/HomePage'));
const AccountPage = lazy(() => import('./pages/AccountPage'));
const BillingPage = lazy(() => import('./pages/BillingPage'));
const ProductsPage = lazy(() => import('./pages/ProductsPage'));
const ProductPage = lazy(() => import('./pages/ProductPage'));
const StoresPage = lazy(() => import('./pages/StoresPage'));
const OptimizerPage = lazy(() => import('./pages/OptimizerPage'));
const QueuePage = lazy(() => import('./pages/QueuePage'));
const CompletedJobsPage = lazy(() => import('./pages/CompletedJobsPage'));

const embedded = captureInstance();

function RequireSession({ children }: { children: JSX.Element }) {
  if (embedded || hasStandaloneSession()) return children;
  return <Navigate to="/login" replace />;
}

function StandaloneOnly({ children }: { children: JSX.Element }) {
  // Embedded merchants are signed in by Wix: they never see the login forms.
  return embedded ? <Navigate to="/" replace /> : children;
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <WixDesignSystemProvider features={{ newColorsBranding: true }}>
      <BrowserRouter>
        <Suspense fallback={<PageLoading />}>
          <Routes>
            <Route path="/login" element={<StandaloneOnly><LoginPage /></StandaloneOnly>} />
            <Route path="/register" element={<StandaloneOnly><RegisterPage /></StandaloneOnly>} />
            <Route path="/demo-login" element={<DemoLoginPage />} />
            <Route
              element={
                <RequireSession>
                  <AppFrame embedded={embedded} />
                </RequireSession>
              }
            >
              <Route index element={<HomePage />} />
              <Route path="products" element={<ProductsPage />} />
              <Route path="products/:id" element={<ProductPage />} />
              <Route path="optimizer" element={<OptimizerPage />} />
              <Route path="queue" element={<QueuePage />} />
              <Route path="jobs" element={<CompletedJobsPage />} />
              <Route path="stores" element={<StoresPage />} />
              <Route path="billing" element={<BillingPage />} />
              <Route path="account" element={<AccountPage embedded={embedded} />} />
            </Route>
            <Route path="*" element={<Navigate to="/" replace />} />
          </Routes>
        </Suspense>
      </BrowserRouter>
    </WixDesignSystemProvider>
  </StrictMode>,
);
