import { defineConfig } from 'vite';
import { purgeWdsCss } from './build/purgeWdsCss';

// No React plugin: esbuild compiles TSX with the automatic runtime, which is all the
// dashboard needs (fast refresh is a development nicety we do without).
export default defineConfig({
  esbuild: { jsx: 'automatic' },
  plugins: [purgeWdsCss()],
  build: {
    target: 'es2020',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:3000',
      '/health': 'http://127.0.0.1:3000',
      '/ready': 'http://127.0.0.1:3000',
    },
  },
});
