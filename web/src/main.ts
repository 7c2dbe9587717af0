// Entry point of Deck's web client: picks the language, then starts the app.

import './style.css';
import { initialLang, setLang } from './i18n';
import './session';
import { App } from './ui/App';

setLang(initialLang(), false);
const root = document.getElementById('app');
if (root) new App(root);
