// What a web app's bundler sees: the browser hub client as an npm dependency.
import { DuplexClient } from 'duplex-ws/client';
window.DuplexClient = DuplexClient;
